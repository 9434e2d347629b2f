"""The operator discovers and registers against the real oidc-provider, under its own RBAC."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import gateways as gw
from tests.support.control_plane import ControlPlane
from tests.support.mcp_resource import serve_mcp_resource
from tests.support.oidc_peer import OIDCPeer
from tests.support.operator_process import start_operator
from tests.support.processes import ManagedProcess

pytestmark = pytest.mark.integration
CALLBACK = "http://127.0.0.1:18080"
REDIRECT_URI = f"{CALLBACK}/oauth/callback"


@pytest.fixture
def run_operator(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., ManagedProcess]]:
    started: list[ManagedProcess] = []

    def run(**env: str) -> ManagedProcess:
        proc = start_operator(
            operator_kubeconfig,
            tmp_path / f"operator-{len(started)}.log",
            namespaces=[namespace],
            callback_public_url=CALLBACK,
            extra_env=env,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.stop()
        print(f"--- {proc.log_path} ---\n{proc.tail(60)}")


def test_discovers_through_rfc9728_and_registers_dynamically(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    run_operator()
    with serve_mcp_resource(oidc_peer.issuer) as mcp:
        gw.apply(
            control_plane,
            gw.make_gateway("files", namespace, mcp.url, oauth={"scopes": ["mcp:tools"]}),
        )
        body = gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
    status = body["status"]
    assert status["discovery"]["resourceMetadataURL"] == mcp.metadata_url
    assert status["discovery"]["issuer"] == oidc_peer.issuer
    assert gw.condition(body, "Discovered")["status"] == "True"
    client_id = status["client"]["clientID"]
    data = gw.secret_data(control_plane, "files-oauth-client", namespace)
    assert data is not None
    assert data["client_id"] == client_id
    assert data["client_secret"]
    assert data["redirect_uri"] == REDIRECT_URI
    assert data["issuer"] == oidc_peer.issuer
    assert data["token_endpoint"].startswith(oidc_peer.issuer)
    registered = oidc_peer.admin_client(client_id)
    assert registered is not None
    assert registered["redirect_uris"] == [REDIRECT_URI]
