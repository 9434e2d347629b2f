"""HTTP routers of the callback service, one per resource."""
