"""Factories and bounded waits for MCPGateway objects, through kubectl as a user would."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tests.support.control_plane import ControlPlane


def make_gateway(name: str, namespace: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mcpgw.dev/v1alpha1",
        "kind": "MCPGateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, **spec},
    }


def apply(cp: ControlPlane, manifest: dict[str, Any]) -> None:
    result = cp.kubectl_run("apply", "-f", "-", input=json.dumps(manifest))
    assert result.returncode == 0, result.stderr


def get(cp: ControlPlane, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = cp.kubectl_run("get", kind, name, "-n", namespace, "-o", "json")
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((body or {}).get("status") or {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return None


def wait_for_condition(
    cp: ControlPlane,
    name: str,
    namespace: str,
    kind: str,
    status: str,
    *,
    reason: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Poll until the condition has that status (and reason); the body is returned."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = get(cp, "mcpgateway", name, namespace)
        cond = condition(last, kind)
        if cond and cond["status"] == status and (reason is None or cond["reason"] == reason):
            assert last is not None
            return last
        time.sleep(0.3)
    raise AssertionError(
        f"{namespace}/{name}: {kind} never became {status}/{reason} in {timeout} s; "
        f"last status: {json.dumps((last or {}).get('status'), indent=1)}"
    )


def secret_data(cp: ControlPlane, name: str, namespace: str) -> dict[str, str] | None:
    secret = get(cp, "secret", name, namespace)
    if secret is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
