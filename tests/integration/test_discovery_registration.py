"""Discovery and RFC 7591/7592 registration by the protocol core, against the oidc-provider peer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from mcpgw_core.api import Reason, RegistrationMode
from mcpgw_core.discovery import Discovery, DiscoveryError, discover
from mcpgw_core.errors import OAuthError
from mcpgw_core.http import build_client
from mcpgw_core.registration import (
    RegisteredClient,
    RegistrationGone,
    RegistrationRequest,
    choose_registration_mode,
    delete_registration,
    read_registration,
    register_client,
    update_registration,
)
from tests.support.mcp_resource import serve_mcp_resource
from tests.support.oidc_peer import OIDCPeer, start_oidc_peer

pytestmark = pytest.mark.integration

REDIRECT_URI = "http://127.0.0.1:8765/oauth/callback"
# Bounds every test's network work; the peer answers in milliseconds.
LIMIT_S = 20


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with build_client(timeout=5.0) as client:
        yield client


@pytest.fixture(scope="module")
def iat_peer() -> Iterator[OIDCPeer]:
    with start_oidc_peer(dcr="initial-access-token", issuer_path="/iat") as peer:
        yield peer


async def run_discovery(
    http: httpx.AsyncClient, *, resource_url: str, issuer: str | None
) -> Discovery:
    return await asyncio.wait_for(discover(http, resource_url=resource_url, issuer=issuer), LIMIT_S)


def request(name: str, *scopes: str) -> RegistrationRequest:
    return RegistrationRequest(
        client_name=name, redirect_uris=(REDIRECT_URI,), scopes=scopes or ("mcp:tools",)
    )


async def test_discovery_of_a_path_issuer(oidc_peer: OIDCPeer, http: httpx.AsyncClient) -> None:
    found = await run_discovery(
        http, resource_url="http://127.0.0.1:9/mcp", issuer=oidc_peer.issuer
    )
    assert found.issuer == oidc_peer.issuer
    assert [(hop.url, hop.outcome) for hop in found.hops] == [(oidc_peer.oauth_metadata_url, "ok")]
    server = found.authorization_server
    assert "S256" in server.code_challenge_methods_supported
    assert server.registration_endpoint is not None
    assert found.token_endpoint.startswith(oidc_peer.base_url)


@pytest.mark.parametrize(
    ("in_header", "first_outcome"),
    [
        pytest.param(True, "HTTP 401 with resource_metadata", id="challenge"),
        pytest.param(False, "HTTP 401 without resource_metadata", id="well-known"),
    ],
)
async def test_discovery_through_rfc9728(
    oidc_peer: OIDCPeer, http: httpx.AsyncClient, in_header: bool, first_outcome: str
) -> None:
    with serve_mcp_resource(oidc_peer.issuer, advertise_in_header=in_header) as resource:
        found = await run_discovery(http, resource_url=resource.url, issuer=None)
    assert found.hops[0].outcome == first_outcome
    assert found.resource_metadata_url == resource.metadata_url
    assert found.resource == resource.url
    assert found.issuer == oidc_peer.issuer
    if in_header:
        assert found.challenge_scope == "mcp:tools"


async def test_discovery_falls_back_to_openid_configuration_appended(
    http: httpx.AsyncClient,
) -> None:
    with start_oidc_peer(metadata=["openid-path-appended"], issuer_path="/only-oidc") as peer:
        found = await run_discovery(http, resource_url="http://127.0.0.1:9/mcp", issuer=peer.issuer)
    assert [hop.outcome.split(" (")[0] for hop in found.hops] == ["HTTP 404", "HTTP 404", "ok"]
    assert found.authorization_server.metadata_url == peer.openid_configuration_url


async def test_an_issuer_that_differs_in_one_character_is_refused(
    oidc_peer: OIDCPeer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(DiscoveryError) as caught:
        await run_discovery(
            http, resource_url="http://127.0.0.1:9/mcp", issuer=oidc_peer.issuer + "/"
        )
    assert caught.value.reason == Reason.ISSUER_MISMATCH
    assert not caught.value.retryable


async def test_anonymous_dcr_and_rfc7592_read_update_delete(
    oidc_peer: OIDCPeer, http: httpx.AsyncClient
) -> None:
    found = await run_discovery(
        http, resource_url="http://127.0.0.1:9/mcp", issuer=oidc_peer.issuer
    )
    mode = choose_registration_mode("Auto", False, found.authorization_server)
    assert mode is RegistrationMode.DYNAMIC

    client = await register_client(
        http, found.authorization_server, request("core-it dcr"), initial_access_token=None
    )
    stored = oidc_peer.admin_client(client.client_id)
    assert stored is not None
    assert stored["redirect_uris"] == [REDIRECT_URI]
    assert stored["client_name"] == "core-it dcr"
    assert stored["token_endpoint_auth_method"] == "client_secret_basic"
    expected_grants = {"authorization_code"}
    if "refresh_token" in found.authorization_server.grant_types_supported:
        expected_grants.add("refresh_token")
    assert set(stored["grant_types"]) == expected_grants
    assert client.client_secret
    assert client.manageable
    assert client.missing_redirect_uris([REDIRECT_URI]) == ()

    read = await read_registration(
        http,
        _uri(client),
        _token(client),
        client_secret=client.client_secret,
    )
    assert read.client_id == client.client_id
    assert read.client_secret == client.client_secret

    updated = await update_registration(
        http,
        found.authorization_server,
        request("core-it dcr", "mcp:tools", "mcp:resources"),
        client_id=read.client_id,
        registration_client_uri=_uri(read),
        registration_access_token=_token(read),
        client_secret=read.client_secret,
    )
    assert set((oidc_peer.admin_client(client.client_id) or {})["scope"].split()) == {
        "mcp:tools",
        "mcp:resources",
    }

    assert await delete_registration(http, _uri(updated), _token(updated)) is True
    assert oidc_peer.admin_client(client.client_id) is None
    assert await delete_registration(http, _uri(updated), _token(updated)) is False
    with pytest.raises(RegistrationGone):
        await read_registration(http, _uri(updated), _token(updated))


def _uri(client: RegisteredClient) -> str:
    assert client.registration_client_uri is not None
    return client.registration_client_uri


def _token(client: RegisteredClient) -> str:
    assert client.registration_access_token is not None
    return client.registration_access_token


@pytest.mark.parametrize(
    "token",
    [pytest.param(None, id="missing"), pytest.param("wrong-token-0123456789", id="wrong")],
)
async def test_dcr_initial_access_token_refusals(
    iat_peer: OIDCPeer, http: httpx.AsyncClient, token: str | None
) -> None:
    found = await run_discovery(http, resource_url="http://127.0.0.1:9/mcp", issuer=iat_peer.issuer)
    with pytest.raises(OAuthError) as caught:
        await register_client(
            http, found.authorization_server, request("core-it iat"), initial_access_token=token
        )
    assert caught.value.reason == Reason.INITIAL_ACCESS_TOKEN_INVALID
    assert not caught.value.retryable
    if token is not None:
        assert token not in str(caught.value)
    assert iat_peer.initial_access_token is not None
    assert iat_peer.initial_access_token not in str(caught.value)


async def test_dcr_with_the_initial_access_token(
    iat_peer: OIDCPeer, http: httpx.AsyncClient
) -> None:
    found = await run_discovery(http, resource_url="http://127.0.0.1:9/mcp", issuer=iat_peer.issuer)
    client = await register_client(
        http,
        found.authorization_server,
        request("core-it iat"),
        initial_access_token=iat_peer.initial_access_token,
    )
    assert iat_peer.admin_client(client.client_id) is not None
    assert await delete_registration(http, _uri(client), _token(client)) is True


@pytest.mark.parametrize(
    ("redirect_uri", "error"),
    [
        pytest.param("http://127.0.0.1:8765/cb#fragment", "invalid_redirect_uri", id="fragment"),
        pytest.param("not a url", "invalid_redirect_uri", id="not-a-url"),
    ],
)
async def test_dcr_rejected_with_an_oauth_error_body(
    oidc_peer: OIDCPeer, http: httpx.AsyncClient, redirect_uri: str, error: str
) -> None:
    found = await run_discovery(
        http, resource_url="http://127.0.0.1:9/mcp", issuer=oidc_peer.issuer
    )
    bad = RegistrationRequest(client_name="core-it bad", redirect_uris=(redirect_uri,))
    with pytest.raises(OAuthError) as caught:
        await register_client(http, found.authorization_server, bad, initial_access_token=None)
    assert caught.value.reason == Reason.REGISTRATION_REJECTED
    assert not caught.value.retryable
    assert f"HTTP 400 ({error}" in caught.value.message


async def test_a_server_without_dcr_leaves_auto_without_a_mode(http: httpx.AsyncClient) -> None:
    with start_oidc_peer(dcr="disabled", issuer_path="/no-dcr") as peer:
        found = await run_discovery(http, resource_url="http://127.0.0.1:9/mcp", issuer=peer.issuer)
    assert found.registration_endpoint is None
    with pytest.raises(OAuthError) as caught:
        choose_registration_mode("Auto", False, found.authorization_server)
    assert caught.value.reason == Reason.REGISTRATION_UNSUPPORTED
    mode: Any = choose_registration_mode("Auto", True, found.authorization_server)
    assert mode is RegistrationMode.PRE_REGISTERED
