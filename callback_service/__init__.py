"""FastAPI callback service: starts authorization flows, receives callbacks, stores tokens."""
