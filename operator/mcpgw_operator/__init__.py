"""Kopf operator that reconciles MCPGateway objects and the shared callback service."""
