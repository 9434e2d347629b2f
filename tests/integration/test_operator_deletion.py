"""Deleting an MCPGateway: RFC 7592 DELETE at the AS (or not, for Orphan), and an AS that is
down at deletion time does not keep the object forever."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.support import gateways as gw
from tests.support.control_plane import ControlPlane
from tests.support.oidc_peer import OIDCPeer, start_oidc_peer
from tests.support.processes import ManagedProcess
from tests.support.secret_scan import assert_no_secret_leaked, events, operator_secrets

pytestmark = pytest.mark.integration
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"


def _gateway(name: str, namespace: str, issuer: str, policy: str) -> dict[str, object]:
    return gw.make_gateway(
        name,
        namespace,
        UNUSED_MCP_URL,
        oauth={"issuer": issuer, "scopes": ["mcp:tools"]},
        deletionPolicy=policy,
    )


def _delete_and_wait_gone(cp: ControlPlane, name: str, namespace: str, timeout: float) -> None:
    deleted = cp.kubectl_run("delete", "mcpgateway", name, "-n", namespace, "--wait=false")
    assert deleted.returncode == 0, deleted.stderr
    gw.wait_until(
        lambda: gw.get(cp, "mcpgateway", name, namespace) is None,
        timeout=timeout,
        what=f"mcpgateway {name} to be gone",
    )


@pytest.mark.parametrize(("policy", "kept_at_as"), [("Delete", False), ("Orphan", True)])
def test_deletion_policy_at_the_authorization_server(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
    policy: str,
    kept_at_as: bool,
) -> None:
    operator = run_operator()
    gw.apply(control_plane, _gateway("files", namespace, oidc_peer.issuer, policy))
    body = gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
    client_id = body["status"]["client"]["clientID"]
    # Taken now: garbage collection removes the Secrets holding them after the gateway goes.
    stored = operator_secrets(control_plane, namespace)
    assert oidc_peer.admin_client(client_id) is not None
    deleted_before = oidc_peer.stats()["registrations"]["deleted"]

    _delete_and_wait_gone(control_plane, "files", namespace, timeout=20)

    assert (oidc_peer.admin_client(client_id) is not None) is kept_at_as
    assert oidc_peer.stats()["registrations"]["deleted"] == deleted_before + (not kept_at_as)
    assert events(control_plane, namespace, reason="RegistrationLeftBehind") == []
    announced = events(control_plane, namespace, reason="RegistrationDeleted")
    assert [client_id in e["message"] for e in announced] == ([] if kept_at_as else [True])
    assert_no_secret_leaked(control_plane, namespace, [operator.log_path], extra=stored)


def test_unreachable_as_at_deletion_gives_up_after_bounded_attempts(
    control_plane: ControlPlane,
    namespace: str,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    operator = run_operator(MCPGW_DELETE_ATTEMPTS="2")
    with start_oidc_peer(issuer_path="/doomed") as peer:
        gw.apply(control_plane, _gateway("files", namespace, peer.issuer, "Delete"))
        body = gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
        client_id = body["status"]["client"]["clientID"]
        # Taken now: the Secrets holding them are garbage-collected with the gateway.
        stored = operator_secrets(control_plane, namespace)
    assert not peer.is_running()

    # Attempt 1 fails, attempt 2 follows its backoff (5 s) and fails, then the object goes.
    started = time.monotonic()
    _delete_and_wait_gone(control_plane, "files", namespace, timeout=40)
    assert time.monotonic() - started >= 4, "the second attempt must wait for its backoff"
    [left] = events(control_plane, namespace, reason="RegistrationLeftBehind", name="files")
    assert left["type"] == "Warning"
    assert client_id in left["message"]
    assert peer.issuer in left["message"]
    assert "after 2 attempts" in left["message"]
    assert events(control_plane, namespace, reason="RegistrationDeleted") == []
    assert len(stored) == 2  # the client secret and the registration access token
    assert_no_secret_leaked(control_plane, namespace, [operator.log_path], extra=stored)
