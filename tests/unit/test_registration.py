"""RFC 7591 registration and RFC 7592 read/update/delete against a scripted server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mcpgw_core.api import Reason
from mcpgw_core.errors import OAuthError
from mcpgw_core.metadata import AuthorizationServerMetadata, parse_authorization_server
from mcpgw_core.registration import (
    RegisteredClient,
    RegistrationGone,
    RegistrationRequest,
    delete_registration,
    read_registration,
    register_client,
    update_registration,
)
from tests.support.fake_http import ISSUER, REDIRECT_URI, FakeHTTP, as_metadata

REG = f"{ISSUER}/reg"
MANAGE = f"{ISSUER}/reg/client-1"
IAT = "iat-secret-0123456789"
CLIENT_SECRET = "cs-secret-0123456789"
RAT = "rat-secret-0123456789"
REQUEST = RegistrationRequest(
    client_name="mcpgw ns/gw [1]", redirect_uris=(REDIRECT_URI,), scopes=("mcp",)
)


def server(**overrides: Any) -> AuthorizationServerMetadata:
    return parse_authorization_server(
        as_metadata(**overrides), issuer=ISSUER, metadata_url=f"{ISSUER}/meta"
    )


def registered(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "client_id": "client-1",
        "client_secret": CLIENT_SECRET,
        "client_id_issued_at": 1700000000,
        "client_secret_expires_at": 0,
        "registration_access_token": RAT,
        "registration_client_uri": MANAGE,
        "token_endpoint_auth_method": "client_secret_basic",
        "client_name": REQUEST.client_name,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "mcp",
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


async def register(fake: FakeHTTP, *, iat: str | None = None, **overrides: Any) -> RegisteredClient:
    async with fake.client() as client:
        return await register_client(client, server(**overrides), REQUEST, initial_access_token=iat)


async def register_fails(fake: FakeHTTP, *, iat: str | None = None, **overrides: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await register(fake, iat=iat, **overrides)
    return caught.value


async def test_register_sends_rfc7591_metadata_with_the_initial_access_token() -> None:
    fake = FakeHTTP()
    fake.json("POST", REG, registered(), status=201)

    client = await register(fake, iat=IAT)

    request = fake.requests[0]
    assert request.headers["authorization"] == f"Bearer {IAT}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "client_name": REQUEST.client_name,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "mcp",
    }
    assert client.client_id == "client-1"
    assert client.client_secret == CLIENT_SECRET
    assert client.client_id_issued_at == 1700000000
    assert client.client_secret_expires_at == 0
    assert client.registration_access_token == RAT
    assert client.registration_client_uri == MANAGE
    assert client.manageable
    assert client.missing_redirect_uris([REDIRECT_URI]) == ()
    assert not client.secret_expired(now=2e9)
    assert client.metadata["client_secret"] == "[REDACTED]"
    assert CLIENT_SECRET not in repr(client)
    assert RAT not in repr(client)


async def test_register_without_an_initial_access_token_sends_no_authorization() -> None:
    fake = FakeHTTP()
    fake.json("POST", REG, registered(client_secret=None, registration_access_token=None))
    client = await register(fake)
    assert "authorization" not in fake.requests[0].headers
    assert client.client_secret is None
    assert not client.manageable


async def test_an_accepted_registration_is_returned_even_when_it_differs() -> None:
    fake = FakeHTTP()
    answer = registered(redirect_uris=["https://other.test/cb"], client_secret_expires_at="1800")
    fake.json("POST", REG, answer, status=201)
    client = await register(fake)
    assert client.missing_redirect_uris([REDIRECT_URI]) == (REDIRECT_URI,)
    assert client.client_secret_expires_at == 1800
    assert client.secret_expired(now=1800)


async def test_no_registration_endpoint_sends_nothing() -> None:
    fake = FakeHTTP()
    error = await register_fails(fake, registration_endpoint=None)
    assert error.reason == Reason.REGISTRATION_UNSUPPORTED
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "body", "iat", "reason", "retryable", "text"),
    [
        pytest.param(
            400,
            {"error": "invalid_redirect_uri", "error_description": "redirect_uris must be https"},
            None,
            Reason.REGISTRATION_REJECTED,
            False,
            "HTTP 400 (invalid_redirect_uri: redirect_uris must be https)",
            id="invalid-redirect-uri",
        ),
        pytest.param(
            400,
            {"error": "invalid_client_metadata"},
            None,
            Reason.REGISTRATION_REJECTED,
            False,
            "HTTP 400 (invalid_client_metadata)",
            id="invalid-client-metadata",
        ),
        pytest.param(
            401,
            {"error": "invalid_token"},
            None,
            Reason.INITIAL_ACCESS_TOKEN_INVALID,
            False,
            "the server requires an initial access token (initialAccessTokenRef)",
            id="iat-missing",
        ),
        pytest.param(
            401,
            {"error": "invalid_token", "error_description": "invalid token"},
            IAT,
            Reason.INITIAL_ACCESS_TOKEN_INVALID,
            False,
            "the initial access token was rejected",
            id="iat-wrong",
        ),
        pytest.param(
            403, {}, IAT, Reason.INITIAL_ACCESS_TOKEN_INVALID, False, "rejected", id="iat-403"
        ),
        pytest.param(
            400,
            {"error": "invalid_token"},
            IAT,
            Reason.INITIAL_ACCESS_TOKEN_INVALID,
            False,
            "rejected",
            id="iat-400-invalid-token",
        ),
        pytest.param(
            500, {}, None, Reason.AUTHORIZATION_SERVER_ERROR, True, "HTTP 500", id="server-error"
        ),
        pytest.param(
            429, {}, None, Reason.AUTHORIZATION_SERVER_ERROR, True, "HTTP 429", id="rate-limited"
        ),
        pytest.param(
            404, {}, None, Reason.REGISTRATION_REJECTED, False, "HTTP 404", id="endpoint-missing"
        ),
    ],
)
async def test_register_failures(
    status: int,
    body: dict[str, Any],
    iat: str | None,
    reason: str,
    retryable: bool,
    text: str,
) -> None:
    fake = FakeHTTP()
    fake.json("POST", REG, body, status=status)
    error = await register_fails(fake, iat=iat)
    assert (error.reason, error.retryable) == (reason, retryable)
    assert error.message.startswith(f"POST {REG}: ")
    assert text in error.message


@pytest.mark.parametrize(
    ("respond", "detail"),
    [
        pytest.param(
            lambda _: httpx.Response(201, text="<html/>", headers={"content-type": "text/html"}),
            "HTML (HTTP 201), not JSON",
            id="html",
        ),
        pytest.param(
            lambda _: httpx.Response(201, json={"client_secret": "x"}),
            "answer has no client_id",
            id="no-client-id",
        ),
    ],
)
async def test_unusable_registration_answers(respond: Any, detail: str) -> None:
    fake = FakeHTTP()
    fake.on("POST", REG, respond)
    error = await register_fails(fake)
    assert error.reason == Reason.REGISTRATION_REJECTED
    assert error.message == f"POST {REG}: {detail}"


async def test_register_timeout_is_retryable() -> None:
    fake = FakeHTTP()
    fake.fail("POST", REG, httpx.ReadTimeout("slow"))
    error = await register_fails(fake)
    assert (error.reason, error.retryable) == (Reason.AUTHORIZATION_SERVER_UNREACHABLE, True)


async def test_read_keeps_credentials_the_answer_leaves_out() -> None:
    fake = FakeHTTP()
    fake.json("GET", MANAGE, registered(client_secret=None, registration_access_token=None))
    async with fake.client() as client:
        found = await read_registration(client, MANAGE, RAT, client_secret=CLIENT_SECRET)
    assert fake.requests[0].headers["authorization"] == f"Bearer {RAT}"
    assert (found.client_secret, found.registration_access_token) == (CLIENT_SECRET, RAT)
    assert found.registration_client_uri == MANAGE


async def test_read_takes_a_rotated_registration_access_token() -> None:
    fake = FakeHTTP()
    fake.json("GET", MANAGE, registered(registration_access_token="rat-rotated-0000"))
    async with fake.client() as client:
        found = await read_registration(client, MANAGE, RAT)
    assert found.registration_access_token == "rat-rotated-0000"


async def test_update_puts_the_full_metadata_with_client_id_and_secret() -> None:
    fake = FakeHTTP()
    fake.json("PUT", MANAGE, registered(scope="mcp admin"))
    request = RegistrationRequest(
        client_name="gw", redirect_uris=(REDIRECT_URI,), scopes=("mcp", "admin")
    )
    async with fake.client() as client:
        updated = await update_registration(
            client,
            server(),
            request,
            client_id="client-1",
            registration_client_uri=MANAGE,
            registration_access_token=RAT,
            client_secret=CLIENT_SECRET,
        )
    sent = json.loads(fake.requests[0].content)
    assert sent["client_id"] == "client-1"
    assert sent["client_secret"] == CLIENT_SECRET
    assert sent["scope"] == "mcp admin"
    assert sent["redirect_uris"] == [REDIRECT_URI]
    assert "registration_access_token" not in sent
    assert fake.requests[0].headers["authorization"] == f"Bearer {RAT}"
    assert updated.scope == "mcp admin"


async def test_update_rejected_by_the_server() -> None:
    fake = FakeHTTP()
    fake.json("PUT", MANAGE, {"error": "invalid_redirect_uri"}, status=400)
    async with fake.client() as client:
        with pytest.raises(OAuthError) as caught:
            await update_registration(
                client,
                server(),
                REQUEST,
                client_id="client-1",
                registration_client_uri=MANAGE,
                registration_access_token=RAT,
            )
    assert caught.value.reason == Reason.REGISTRATION_REJECTED
    assert not isinstance(caught.value, RegistrationGone)


@pytest.mark.parametrize("status", [pytest.param(401, id="401"), pytest.param(404, id="404")])
async def test_read_and_update_of_a_vanished_client_raise_gone(status: int) -> None:
    fake = FakeHTTP()
    fake.json("GET", MANAGE, {"error": "invalid_token"}, status=status)
    fake.json("PUT", MANAGE, {"error": "invalid_token"}, status=status)
    async with fake.client() as client:
        with pytest.raises(RegistrationGone) as read_error:
            await read_registration(client, MANAGE, RAT)
        with pytest.raises(RegistrationGone):
            await update_registration(
                client,
                server(),
                REQUEST,
                client_id="client-1",
                registration_client_uri=MANAGE,
                registration_access_token=RAT,
            )
    assert read_error.value.reason == Reason.REGISTRATION_NOT_FOUND


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(204, True, id="204-deleted"),
        pytest.param(200, True, id="200-deleted"),
        pytest.param(401, False, id="401-gone"),
        pytest.param(404, False, id="404-gone"),
    ],
)
async def test_delete(status: int, expected: bool) -> None:
    fake = FakeHTTP()
    fake.status("DELETE", MANAGE, status)
    async with fake.client() as client:
        assert await delete_registration(client, MANAGE, RAT) is expected
    assert fake.requests[0].headers["authorization"] == f"Bearer {RAT}"


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        pytest.param(500, Reason.AUTHORIZATION_SERVER_ERROR, True, id="500"),
        pytest.param(405, Reason.REGISTRATION_UNSUPPORTED, False, id="405"),
        pytest.param(403, Reason.REGISTRATION_REJECTED, False, id="403"),
    ],
)
async def test_delete_failures(status: int, reason: str, retryable: bool) -> None:
    fake = FakeHTTP()
    fake.status("DELETE", MANAGE, status)
    async with fake.client() as client:
        with pytest.raises(OAuthError) as caught:
            await delete_registration(client, MANAGE, RAT)
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)


def echo_secrets(request: httpx.Request) -> httpx.Response:
    """A hostile server quoting back every credential it received or holds for the client."""
    sent = request.headers.get("authorization", "") + " " + request.content.decode()
    held = "" if request.method == "POST" else f" {CLIENT_SECRET} {RAT}"
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    return httpx.Response(
        400,
        json={
            "error": f"invalid_client_metadata {token}",
            "error_description": f"got {sent}{held}",
        },
    )


async def test_secrets_never_appear_in_error_messages() -> None:
    fake = FakeHTTP()
    for method, url in (("POST", REG), ("GET", MANAGE), ("PUT", MANAGE), ("DELETE", MANAGE)):
        fake.on(method, url, echo_secrets)
    errors: list[OAuthError] = []
    async with fake.client() as client:
        calls = [
            register_client(client, server(), REQUEST, initial_access_token=IAT),
            read_registration(client, MANAGE, RAT, client_secret=CLIENT_SECRET),
            update_registration(
                client,
                server(),
                REQUEST,
                client_id="client-1",
                registration_client_uri=MANAGE,
                registration_access_token=RAT,
                client_secret=CLIENT_SECRET,
            ),
            delete_registration(client, MANAGE, RAT, client_secret=CLIENT_SECRET),
        ]
        for call in calls:
            with pytest.raises(OAuthError) as caught:
                await call
            errors.append(caught.value)
    assert len(errors) == 4
    for error in errors:
        shown = f"{error} {error.message} {error!r} {error.args}"
        assert "[REDACTED]" in shown
        for secret in (IAT, CLIENT_SECRET, RAT):
            assert secret not in shown, f"{secret} leaked from {error.message}"
