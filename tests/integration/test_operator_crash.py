"""Killing the operator during registration (MCPGW_FAILPOINT) never yields a second live
registration while the first is known, and an unknowable one is reported by its client name.

When the process dies after recording its intent, the restarted operator cannot tell whether
the request reached the AS (RFC 7591 offers no lookup by client name), so in both kill points
it posts one PossibleOrphanedRegistration Warning naming the client name of the lost attempt.
For a kill before the request that warning is a false alarm, and the AS shows it: exactly one
client was registered, under the new attempt's name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import gateways as gw
from tests.support.audit import AuditLog
from tests.support.control_plane import ControlPlane
from tests.support.oidc_peer import OIDCPeer
from tests.support.processes import ManagedProcess
from tests.support.secret_scan import assert_no_secret_leaked, events

pytestmark = pytest.mark.integration
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"
KILLED = 137  # what os._exit(137) at the failpoint returns, as an OOM kill would


def _record(cp: ControlPlane, namespace: str) -> dict[str, Any]:
    data = gw.secret_data(cp, "files-oauth-registration", namespace)
    assert data is not None, "the intent must be stored before the request"
    record: dict[str, Any] = json.loads(data["registration.json"])
    return record


def _wait_for_full_pass(cp: ControlPlane, audit: AuditLog, mark: int, namespace: str) -> None:
    """Until the operator has read the registration record again (each pass reads it)."""

    def read_it() -> bool:
        return any(
            r.verb == "get" and r.name == "files-oauth-registration"
            for r in audit.requests(since=mark, namespace=namespace)
        )

    gw.wait_until(read_it, timeout=30, what="a reconcile pass of the restarted operator")


@pytest.mark.parametrize(
    ("failpoint", "registered_before_kill"),
    [("before-registration-request", 0), ("after-registration-response", 1)],
)
def test_killed_during_registration(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
    failpoint: str,
    registered_before_kill: int,
) -> None:
    assert control_plane.audit_log is not None
    audit = AuditLog(control_plane.audit_log)
    created = oidc_peer.stats()["registrations"]["created"]
    doomed = run_operator(MCPGW_FAILPOINT=failpoint)
    gw.apply(
        control_plane,
        gw.make_gateway("files", namespace, UNUSED_MCP_URL, oauth={"issuer": oidc_peer.issuer}),
    )
    gw.wait_until(lambda: not doomed.alive(), timeout=30, what=f"the kill at {failpoint}")
    assert doomed.popen is not None
    assert doomed.popen.returncode == KILLED
    assert oidc_peer.stats()["registrations"]["created"] == created + registered_before_kill
    record = _record(control_plane, namespace)
    lost_name = record["intent"]["clientName"]
    assert not record.get("registration")  # the answer, if any, was never stored

    restarted = run_operator()
    body = gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
    client_id = body["status"]["client"]["clientID"]
    assert oidc_peer.stats()["registrations"]["created"] == created + registered_before_kill + 1
    registered = oidc_peer.admin_client(client_id)
    assert registered is not None
    assert registered["client_name"] != lost_name
    [warning] = events(control_plane, namespace, reason="PossibleOrphanedRegistration")
    assert warning["type"] == "Warning"
    assert repr(lost_name) in warning["message"]
    assert oidc_peer.issuer in warning["message"]
    record = _record(control_plane, namespace)
    assert record["registration"]["clientId"] == client_id
    assert not record.get("intent")

    # With the registration stored, another restart adopts it: no new client, no new warning.
    restarted.stop()
    mark = audit.mark()
    last = run_operator()
    _wait_for_full_pass(control_plane, audit, mark, namespace)
    assert oidc_peer.stats()["registrations"]["created"] == created + registered_before_kill + 1
    assert len(events(control_plane, namespace, reason="PossibleOrphanedRegistration")) == 1
    after = gw.get(control_plane, "mcpgateway", "files", namespace)
    assert after is not None
    assert after["status"]["client"]["clientID"] == client_id
    assert_no_secret_leaked(
        control_plane, namespace, [doomed.log_path, restarted.log_path, last.log_path]
    )
