"""Secrets a user makes for gateways to reference: pre-registered clients, access tokens."""

from __future__ import annotations

import json

from tests.support.control_plane import ControlPlane


def put_secret(cp: ControlPlane, namespace: str, name: str, data: dict[str, str]) -> None:
    """Create or replace an Opaque Secret with these string values, as an admin would."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }
    result = cp.kubectl_run("apply", "-f", "-", input=json.dumps(manifest))
    # kubectl never echoes stringData values in its errors, so the message is safe to show.
    assert result.returncode == 0, result.stderr
