"""End-to-end scenarios, one set, run against the selected cluster backend (local or kind)."""
