"""Proves the oidc-provider peer: discovery, DCR, RFC 7592, PKCE code flow, refresh, rotation."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.support import oidc_peer
from tests.support.oidc_client import (
    REDIRECT_URI,
    RESOURCE,
    Pkce,
    authorize_url,
    callback_params,
    exchange,
    jwt_claims,
    metadata,
    obtain_code,
    refresh,
    register,
    register_ok,
)
from tests.support.oidc_peer import (
    AuthorizationFlowError,
    OIDCPeer,
    OIDCPeerError,
    complete_authorization,
    start_oidc_peer,
)

pytestmark = pytest.mark.integration

TIMEOUT = httpx.Timeout(10.0)
ACCESS_TOKEN_TTL = 30


@pytest.fixture(scope="module")
def peer() -> Iterator[OIDCPeer]:
    with start_oidc_peer(access_token_ttl=ACCESS_TOKEN_TTL) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        yield client


# --- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_of",
    [
        pytest.param(lambda p: p.oauth_metadata_url, id="rfc8414-path-inserted"),
        pytest.param(
            lambda p: f"{p.base_url}/.well-known/openid-configuration{p.issuer_path}",
            id="openid-path-inserted",
        ),
        pytest.param(lambda p: p.openid_configuration_url, id="openid-path-appended"),
    ],
)
def test_metadata_names_the_path_issuer(peer: OIDCPeer, http: httpx.Client, url_of: Any) -> None:
    response = http.get(url_of(peer))
    assert response.status_code == 200
    body = response.json()
    assert peer.issuer.endswith("/tenant-a")
    assert body["issuer"] == peer.issuer
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["registration_endpoint"] == f"{peer.issuer}/reg"
    assert body["token_endpoint"] == f"{peer.issuer}/token"
    assert {"authorization_code", "refresh_token"} <= set(body["grant_types_supported"])
    assert "mcp:tools" in body["scopes_supported"]


def test_root_issuer_serves_both_documents(http: httpx.Client) -> None:
    with start_oidc_peer(issuer_path="") as root:
        assert root.issuer == root.base_url
        for name in ("oauth-authorization-server", "openid-configuration"):
            response = http.get(f"{root.base_url}/.well-known/{name}")
            assert response.status_code == 200, name
            assert response.json()["issuer"] == root.issuer


def test_metadata_documents_can_be_switched_off(http: httpx.Client) -> None:
    with start_oidc_peer(metadata=["openid-path-appended"], dcr="disabled") as only_oidc:
        assert http.get(only_oidc.oauth_metadata_url).status_code == 404
        body = http.get(only_oidc.openid_configuration_url).json()
        assert body["issuer"] == only_oidc.issuer
        assert "registration_endpoint" not in body


# --- registration ----------------------------------------------------------------------------


def test_anonymous_dcr_then_rfc7592_read(peer: OIDCPeer, http: httpx.Client) -> None:
    created_before = peer.stats()["registrations"]["created"]
    client = register_ok(http, peer)
    assert client.client_secret
    assert client.registration_client_uri == f"{peer.issuer}/reg/{client.client_id}"
    assert peer.stats()["registrations"]["created"] == created_before + 1

    read = http.get(
        client.registration_client_uri,
        headers={"authorization": f"Bearer {client.registration_access_token}"},
    )
    assert read.status_code == 200
    assert read.json()["redirect_uris"] == [REDIRECT_URI]
    assert http.get(client.registration_client_uri).status_code in (400, 401)

    stored = peer.admin_client(client.client_id)
    assert stored is not None
    assert "client_secret" not in stored
    expected = hashlib.sha256(client.client_secret.encode()).hexdigest()
    assert stored["client_secret_sha256"] == expected


def test_rfc7592_update_rotates_registration_access_token(
    peer: OIDCPeer, http: httpx.Client
) -> None:
    client = register_ok(http, peer)
    new_uri = "http://127.0.0.1:8766/oauth/callback"
    update = {**client.body, "redirect_uris": [new_uri]}
    for field in (
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ):
        update.pop(field, None)
    response = http.put(
        client.registration_client_uri,
        json=update,
        headers={"authorization": f"Bearer {client.registration_access_token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["registration_access_token"] != client.registration_access_token
    stored = peer.admin_client(client.client_id)
    assert stored is not None
    assert stored["redirect_uris"] == [new_uri]


def test_rfc7592_delete_removes_the_client(peer: OIDCPeer, http: httpx.Client) -> None:
    client = register_ok(http, peer)
    assert peer.admin_client(client.client_id) is not None
    deleted_before = peer.stats()["registrations"]["deleted"]
    response = http.delete(
        client.registration_client_uri,
        headers={"authorization": f"Bearer {client.registration_access_token}"},
    )
    assert response.status_code == 204
    assert peer.admin_client(client.client_id) is None
    assert peer.stats()["registrations"]["deleted"] == deleted_before + 1


def test_dcr_requires_the_initial_access_token(http: httpx.Client) -> None:
    with start_oidc_peer(dcr="initial-access-token") as guarded:
        assert guarded.initial_access_token
        missing = register(http, guarded)
        wrong = register(http, guarded, token="not-the-token")
        assert (missing.status_code, missing.json()["error"]) == (401, "invalid_token")
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_token")
        assert guarded.initial_access_token not in guarded.log_text()

        accepted = register(http, guarded, token=guarded.initial_access_token)
        assert accepted.status_code == 201, accepted.text
        stats = guarded.stats()
        assert stats["registrations"]["created"] == 1
        assert stats["registration_errors"] == {"registration_create:invalid_token": 2}


# --- authorization code flow -----------------------------------------------------------------


def test_code_flow_with_pkce_then_refresh(peer: OIDCPeer, http: httpx.Client) -> None:
    client = register_ok(http, peer)
    pkce = Pkce.make()
    grants_before = peer.stats()["token_grants"]

    tokens = exchange(http, peer, client, obtain_code(http, peer, client, pkce), pkce.verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ACCESS_TOKEN_TTL
    assert body["refresh_token"]
    assert "id_token" in body
    claims = jwt_claims(body["access_token"])
    assert claims["aud"] == RESOURCE
    assert claims["iss"] == peer.issuer
    assert "mcp:tools" in claims["scope"].split()

    refreshed = refresh(http, peer, client, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["access_token"] != body["access_token"]
    assert jwt_claims(refreshed.json()["access_token"])["aud"] == RESOURCE
    # Rotation is off by default: the same refresh token keeps working.
    assert refresh(http, peer, client, body["refresh_token"]).status_code == 200

    grants = peer.stats()["token_grants"]
    assert grants.get("authorization_code", 0) == grants_before.get("authorization_code", 0) + 1
    assert grants.get("refresh_token", 0) == grants_before.get("refresh_token", 0) + 2
    log = peer.log_text()
    assert client.client_secret is not None
    for secret in (
        client.client_secret,
        client.registration_access_token,
        pkce.verifier,
        body["access_token"],
        body["refresh_token"],
    ):
        assert secret not in log


def test_public_native_client_on_loopback(peer: OIDCPeer, http: httpx.Client) -> None:
    client = register_ok(http, peer, token_endpoint_auth_method="none", application_type="native")
    assert client.client_secret is None
    pkce = Pkce.make()
    code = obtain_code(http, peer, client, pkce)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
        "client_id": client.client_id,
    }
    response = http.post(metadata(http, peer)["token_endpoint"], data=form)
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"]


def test_replayed_code_is_invalid_grant(peer: OIDCPeer, http: httpx.Client) -> None:
    client = register_ok(http, peer)
    pkce = Pkce.make()
    code = obtain_code(http, peer, client, pkce)
    assert exchange(http, peer, client, code, pkce.verifier).status_code == 200
    replay = exchange(http, peer, client, code, pkce.verifier)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")


def test_wrong_verifier_is_invalid_grant(peer: OIDCPeer, http: httpx.Client) -> None:
    client = register_ok(http, peer)
    pkce = Pkce.make()
    code = obtain_code(http, peer, client, pkce)
    wrong = exchange(http, peer, client, code, Pkce.make().verifier)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")


def test_authorization_without_pkce_is_refused(peer: OIDCPeer, http: httpx.Client) -> None:
    client = register_ok(http, peer)
    url = authorize_url(http, peer, client, None, "s1")
    params = callback_params(complete_authorization(url))
    assert params["error"] == "invalid_request"
    assert "code" not in params


def test_second_flow_reuses_the_login_session(peer: OIDCPeer, http: httpx.Client) -> None:
    client = register_ok(http, peer)
    posted: list[str] = []

    def record(request: httpx.Request) -> None:
        if request.method == "POST":
            posted.append(request.content.decode())

    with httpx.Client(
        timeout=TIMEOUT, trust_env=False, event_hooks={"request": [record]}
    ) as browser:
        pages_per_flow = []
        for state in ("first", "second"):
            posted.clear()
            pkce = Pkce.make()
            url = authorize_url(http, peer, client, pkce, state)
            params = callback_params(complete_authorization(url, http=browser))
            assert params["state"] == state
            assert exchange(http, peer, client, params["code"], pkce.verifier).status_code == 200
            pages_per_flow.append([parse_qs(body)["prompt"][0] for body in posted])
    # The session cookie skips the login page; prompt=consent still asks for consent.
    assert pages_per_flow == [["login", "consent"], ["consent"]]


def test_rotated_refresh_token_reuse_revokes_the_grant(http: httpx.Client) -> None:
    with start_oidc_peer(rotate_refresh_tokens=True, access_token_ttl=5) as rotating:
        client = register_ok(http, rotating)
        pkce = Pkce.make()
        code = obtain_code(http, rotating, client, pkce)
        first = exchange(http, rotating, client, code, pkce.verifier).json()
        assert first["expires_in"] == 5

        second = refresh(http, rotating, client, first["refresh_token"])
        assert second.status_code == 200
        rotated = second.json()["refresh_token"]
        assert rotated != first["refresh_token"]

        reuse = refresh(http, rotating, client, first["refresh_token"])
        assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
        # Reuse detection revokes the whole grant, the rotated token included.
        assert refresh(http, rotating, client, rotated).status_code == 400
        stats = rotating.stats()
        assert stats["refresh_token_reuse"] == 1
        assert stats["token_errors"]["refresh_token"]["invalid_grant"] == 2


def test_unlisted_resource_is_invalid_target(http: httpx.Client) -> None:
    with start_oidc_peer(resources=[RESOURCE]) as strict:
        client = register_ok(http, strict)
        url = authorize_url(
            http, strict, client, Pkce.make(), "s", resource="http://127.0.0.1:9/other"
        )
        assert callback_params(complete_authorization(url))["error"] == "invalid_target"


# --- the helper's own failure modes ----------------------------------------------------------


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OIDCPeerError, match="address already in use"):
            start_oidc_peer(port=taken.getsockname()[1])


def test_missing_node_modules_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(oidc_peer, "PEER_DIR", tmp_path)
    with pytest.raises(OIDCPeerError, match="run `npm ci` in"):
        start_oidc_peer()


def test_unknown_page_stops_the_headless_login(peer: OIDCPeer) -> None:
    with pytest.raises(AuthorizationFlowError, match="HTTP 400"):
        complete_authorization(f"{peer.issuer}/auth?client_id=nobody&response_type=code")
