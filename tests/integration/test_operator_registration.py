"""The operator discovers and registers against the real oidc-provider, under its own RBAC.

RFC 9728 discovery from an MCP server's 401, a path-carrying issuer given in the spec, Dynamic
Client Registration with and without an initial access token, and pre-registered clients.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import REDIRECT_URI
from tests.support import gateways as gw
from tests.support.control_plane import ControlPlane
from tests.support.mcp_resource import serve_mcp_resource
from tests.support.oidc_peer import OIDCPeer, start_oidc_peer
from tests.support.processes import ManagedProcess
from tests.support.secret_scan import assert_no_secret_leaked
from tests.support.user_secrets import put_secret

pytestmark = pytest.mark.integration
# With spec.oauth.issuer set the MCP server is never contacted; nothing listens here.
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"


@pytest.fixture(scope="module")
def iat_peer() -> Iterator[OIDCPeer]:
    """An authorization server that registers clients only with its initial access token."""
    with start_oidc_peer(dcr="initial-access-token", issuer_path="/realms/iat") as peer:
        yield peer


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
    assert (gw.condition(body, "Discovered") or {})["status"] == "True"
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


def _dynamic(name: str, namespace: str, issuer: str, token_secret: str | None) -> dict[str, object]:
    registration: dict[str, object] = {"mode": "Dynamic"}
    if token_secret is not None:
        registration["initialAccessTokenRef"] = {"name": token_secret}
    return gw.make_gateway(
        name,
        namespace,
        UNUSED_MCP_URL,
        oauth={"issuer": issuer, "scopes": ["mcp:tools"], "registration": registration},
    )


def test_path_issuer_and_initial_access_token(
    control_plane: ControlPlane,
    namespace: str,
    iat_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    operator = run_operator()
    assert iat_peer.initial_access_token is not None
    wrong_token = "wrong-" + secrets.token_urlsafe(24)
    put_secret(control_plane, namespace, "iat", {"token": iat_peer.initial_access_token})
    put_secret(control_plane, namespace, "iat-wrong", {"token": wrong_token})
    before = iat_peer.stats()["registrations"]["created"]
    for name, token_secret in [
        ("with-token", "iat"),
        ("wrong-token", "iat-wrong"),
        ("token-secret-absent", "absent"),
        ("no-token", None),
    ]:
        gw.apply(control_plane, _dynamic(name, namespace, iat_peer.issuer, token_secret))

    body = gw.wait_for_condition(control_plane, "with-token", namespace, "Registered", "True")
    discovery = body["status"]["discovery"]
    # The issuer's path (/realms/iat) goes after the well-known prefix (RFC 8414 sec. 3.1).
    assert discovery["hops"][0] == {"url": iat_peer.oauth_metadata_url, "outcome": "ok"}
    assert "resourceMetadataURL" not in discovery  # spec.oauth.issuer skips RFC 9728
    assert discovery["issuer"] == iat_peer.issuer
    registered = iat_peer.admin_client(body["status"]["client"]["clientID"])
    assert registered is not None
    assert registered["redirect_uris"] == [REDIRECT_URI]

    for name, expected in [
        ("wrong-token", "the initial access token was rejected"),
        ("token-secret-absent", "Secret absent (initialAccessTokenRef) was not found"),
        ("no-token", "the server requires an initial access token (initialAccessTokenRef)"),
    ]:
        failed = gw.wait_for_condition(
            control_plane, name, namespace, "Ready", "False", reason="InitialAccessTokenInvalid"
        )
        registered_cond = gw.condition(failed, "Registered")
        assert registered_cond is not None
        assert registered_cond["status"] == "False"
        assert expected in registered_cond["message"], registered_cond["message"]
        assert failed["status"]["retry"]["attempts"] >= 1
    assert iat_peer.stats()["registrations"]["created"] == before + 1
    checked = assert_no_secret_leaked(
        control_plane,
        namespace,
        [operator.log_path],
        extra=[iat_peer.initial_access_token, wrong_token],
    )
    assert checked >= 4  # both tokens, the client secret and the registration access token


def _pre_registered(name: str, namespace: str, issuer: str, secret: str) -> dict[str, object]:
    return gw.make_gateway(
        name,
        namespace,
        UNUSED_MCP_URL,
        oauth={
            "issuer": issuer,
            "registration": {"mode": "PreRegistered", "clientSecretRef": {"name": secret}},
        },
    )


def test_pre_registered_client_and_missing_credentials(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    operator = run_operator()
    client_secret = secrets.token_urlsafe(32)
    put_secret(
        control_plane,
        namespace,
        "upstream-client",
        {"client_id": "pre-registered-1", "client_secret": client_secret},
    )
    put_secret(control_plane, namespace, "id-only", {"client_id": "pre-registered-2"})
    before = oidc_peer.stats()["registrations"]["created"]
    for name, secret in [("pre", "upstream-client"), ("lacks-key", "id-only"), ("late", "later")]:
        gw.apply(control_plane, _pre_registered(name, namespace, oidc_peer.issuer, secret))

    body = gw.wait_for_condition(control_plane, "pre", namespace, "Registered", "True")
    assert body["status"]["client"]["clientID"] == "pre-registered-1"
    assert body["status"]["client"]["mode"] == "PreRegistered"
    data = gw.secret_data(control_plane, "pre-oauth-client", namespace)
    assert data is not None
    assert data["client_id"] == "pre-registered-1"
    assert data["client_secret"] == client_secret
    assert data["issuer"] == oidc_peer.issuer

    lacks = gw.wait_for_condition(
        control_plane, "lacks-key", namespace, "Ready", "False", reason="ClientSecretMissing"
    )
    assert (
        "Secret id-only has no key client_secret" in (gw.condition(lacks, "Ready") or {})["message"]
    )
    late = gw.wait_for_condition(
        control_plane, "late", namespace, "Ready", "False", reason="ClientSecretMissing"
    )
    assert (
        "Secret later (clientSecretRef) was not found"
        in (gw.condition(late, "Ready") or {})["message"]
    )

    # Creating the missing Secret heals the gateway at its next retry, with no edit to it.
    put_secret(
        control_plane, namespace, "later", {"client_id": "late-1", "client_secret": "late-secret-1"}
    )
    healed = gw.wait_for_condition(
        control_plane, "late", namespace, "Registered", "True", timeout=40
    )
    assert healed["status"]["client"]["clientID"] == "late-1"
    assert "retry" not in healed["status"]

    # Pre-registered clients are never registered at the authorization server.
    assert oidc_peer.stats()["registrations"]["created"] == before
    assert_no_secret_leaked(
        control_plane, namespace, [operator.log_path], extra=[client_secret, "late-secret-1"]
    )
