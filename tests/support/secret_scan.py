"""What users see (Events, status, logs) and the scan proving no secret value reached any of it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support.control_plane import ControlPlane

GATEWAY_LABEL = "mcpgw.dev/gateway"
# Shorter values (say "none") would match by accident; real secrets are far longer.
MIN_SECRET_LENGTH = 8


def _items(cp: ControlPlane, *args: str) -> list[dict[str, Any]]:
    result = cp.kubectl_run("get", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return items


def events(
    cp: ControlPlane, namespace: str, *, reason: str | None = None, name: str | None = None
) -> list[dict[str, Any]]:
    """Events in the namespace, optionally only those with that reason / about that object."""
    found = _items(cp, "events", "-n", namespace)
    return [
        e
        for e in found
        if (reason is None or e.get("reason") == reason)
        and (name is None or e["involvedObject"].get("name") == name)
    ]


def _decode(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _registration_values(record: dict[str, Any]) -> Iterable[str | None]:
    for reg in [record.get("registration"), *(record.get("pendingDeletion") or [])]:
        if reg:
            yield reg.get("clientSecret")
            yield reg.get("registrationAccessToken")


def operator_secrets(cp: ControlPlane, namespace: str) -> set[str]:
    """Every client secret and registration access token the operator stored in `namespace`."""
    values: set[str | None] = set()
    for secret in _items(cp, "secrets", "-n", namespace, "-l", GATEWAY_LABEL):
        data = _decode(secret)
        values.add(data.get("client_secret"))
        if "registration.json" in data:
            values.update(_registration_values(json.loads(data["registration.json"])))
    return {v for v in values if v}


def assert_no_secret_leaked(
    cp: ControlPlane, namespace: str, logs: Iterable[Path], extra: Iterable[str] = ()
) -> int:
    """Fail if a stored secret (or an `extra` one, such as an initial access token) appears
    in an operator log, an Event or a gateway's status. Returns how many values were checked,
    so a caller can assert the scan had something to look for."""
    secrets = {s for s in (*operator_secrets(cp, namespace), *extra) if len(s) >= MIN_SECRET_LENGTH}
    places = {
        "events": json.dumps(_items(cp, "events", "-n", namespace)),
        "gateway status": json.dumps(
            [g.get("status") for g in _items(cp, "mcpgateways", "-n", namespace)]
        ),
    }
    for log in logs:
        places[f"log {log.name}"] = log.read_text(errors="replace")
    leaks = [
        f"{place} holds a secret value of {len(secret)} characters"
        for secret in secrets
        for place, text in places.items()
        if secret in text
    ]
    assert not leaks, "; ".join(leaks)
    return len(secrets)
