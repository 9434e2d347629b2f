"""Token endpoint client against `httpx.MockTransport`: requests sent, answers classified."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from mcpgw_core.api import Reason, TokenEndpointAuthMethod
from mcpgw_core.http import MAX_BODY_BYTES, build_client
from mcpgw_core.tokens import (
    ClientCredentials,
    TokenEndpointError,
    TokenSet,
    exchange_code,
    refresh,
)

TOKEN_URL = "https://as.example/token"
CODE = "the-authorization-code-123"
VERIFIER = "v" * 64
REDIRECT = "https://callback.example/oauth/callback"
RESOURCE = "https://mcp.example/mcp"
SECRET = "s3cr3t:with+odd chars"
OLD_REFRESH = "old-refresh-token-abc"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
ALL_SECRETS = (CODE, VERIFIER, SECRET, OLD_REFRESH)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Recorder:
    """A mock token endpoint that answers with `respond` and records every request."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | Handler) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.respond(request)
        if asyncio.iscoroutine(result):
            return await result  # type: ignore[no-any-return]
        return result  # type: ignore[return-value]

    def form(self, index: int = 0) -> dict[str, str]:
        parsed = parse_qs(self.requests[index].content.decode(), strict_parsing=True)
        return {key: values[0] for key, values in parsed.items()}

    def client(self) -> httpx.AsyncClient:
        return build_client(transport=httpx.MockTransport(self))


def ok(body: dict[str, object]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=body)


def credentials(method: TokenEndpointAuthMethod) -> ClientCredentials:
    secret = None if method is TokenEndpointAuthMethod.NONE else SECRET
    return ClientCredentials("client:1", secret, method)


async def do_exchange(
    recorder: Recorder,
    method: TokenEndpointAuthMethod = TokenEndpointAuthMethod.CLIENT_SECRET_BASIC,
    time_limit: float = 5.0,
) -> TokenSet:
    async with recorder.client() as client:
        return await exchange_code(
            client,
            token_endpoint=TOKEN_URL,
            code=CODE,
            code_verifier=VERIFIER,
            redirect_uri=REDIRECT,
            credentials=credentials(method),
            now=NOW,
            resource=RESOURCE,
            time_limit=time_limit,
        )


async def do_refresh(recorder: Recorder, current: TokenSet | None = None) -> TokenSet:
    current = current or TokenSet(
        access_token="old-access", refresh_token=OLD_REFRESH, scope="read", obtained_at=NOW
    )
    async with recorder.client() as client:
        return await refresh(
            client,
            token_endpoint=TOKEN_URL,
            current=current,
            credentials=credentials(TokenEndpointAuthMethod.CLIENT_SECRET_POST),
            now=NOW,
            resource=RESOURCE,
        )


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "message", "")):
        for secret in ALL_SECRETS:
            assert secret not in text


# --- successful exchange -----------------------------------------------------------------------


async def test_exchange_sends_code_verifier_redirect_and_resource() -> None:
    recorder = Recorder(ok({"access_token": "at", "token_type": "Bearer", "expires_in": 3600}))
    tokens = await do_exchange(recorder)
    assert recorder.form() == {
        "grant_type": "authorization_code",
        "code": CODE,
        "code_verifier": VERIFIER,
        "redirect_uri": REDIRECT,
        "resource": RESOURCE,
    }
    request = recorder.requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert tokens.access_token == "at"
    assert tokens.expires_at == NOW + timedelta(seconds=3600)
    assert tokens.obtained_at == NOW


async def test_basic_auth_form_encodes_id_and_secret() -> None:
    recorder = Recorder(ok({"access_token": "at"}))
    await do_exchange(recorder)
    scheme, _, encoded = recorder.requests[0].headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "client%3A1:s3cr3t%3Awith%2Bodd%20chars"
    assert "client_secret" not in recorder.form()
    assert "client_id" not in recorder.form()


async def test_client_secret_post_puts_credentials_in_the_body() -> None:
    recorder = Recorder(ok({"access_token": "at"}))
    await do_exchange(recorder, TokenEndpointAuthMethod.CLIENT_SECRET_POST)
    form = recorder.form()
    assert (form["client_id"], form["client_secret"]) == ("client:1", SECRET)
    assert "authorization" not in recorder.requests[0].headers


async def test_public_client_sends_only_its_id() -> None:
    recorder = Recorder(ok({"access_token": "at"}))
    await do_exchange(recorder, TokenEndpointAuthMethod.NONE)
    form = recorder.form()
    assert form["client_id"] == "client:1"
    assert "client_secret" not in form
    assert "authorization" not in recorder.requests[0].headers


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [(60, 60), ("120", 120), (0, 0), (-5, None), ("soon", None), (True, None), (None, None)],
    ids=["int", "string", "zero", "negative", "text", "bool", "absent"],
)
async def test_expires_in_becomes_an_absolute_expiry(
    expires_in: object, expected: int | None
) -> None:
    body: dict[str, object] = {"access_token": "at"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    tokens = await do_exchange(Recorder(ok(body)))
    assert tokens.expires_at == (None if expected is None else NOW + timedelta(seconds=expected))


def test_token_set_repr_hides_tokens() -> None:
    tokens = TokenSet(access_token="AT-x", refresh_token="RT-y", id_token="ID-z", obtained_at=NOW)
    assert not {"AT-x", "RT-y", "ID-z"} & set(repr(tokens).replace("'", " ").split())
    assert "AT-x" not in repr(tokens)
    assert "RT-y" not in repr(tokens)
    assert tokens.expires_within(60, NOW) is False


# --- failed exchange: one request, classified, redacted ---------------------------------------


def oauth_error(status: int, error: str, description: str = "") -> Callable[..., httpx.Response]:
    body = {"error": error, "error_description": description}
    return lambda request: httpx.Response(status, json=body)


async def exchange_failure(recorder: Recorder, time_limit: float = 5.0) -> TokenEndpointError:
    with pytest.raises(TokenEndpointError) as info:
        await do_exchange(recorder, time_limit=time_limit)
    assert len(recorder.requests) == 1, "a code exchange must never be retried"
    assert info.value.reason == Reason.TOKEN_EXCHANGE_FAILED
    assert info.value.retryable is False
    assert_no_secret(info.value)
    return info.value


async def test_invalid_grant_is_definite_and_not_retried() -> None:
    recorder = Recorder(oauth_error(400, "invalid_grant", f"code {CODE} was already used"))
    error = await exchange_failure(recorder)
    assert error.definite
    assert error.grant_revoked
    assert error.error == "invalid_grant"
    assert error.status_code == 400
    assert "invalid_grant" in error.message
    assert "already used" in error.message


async def test_invalid_client_is_definite_but_the_grant_is_not_revoked() -> None:
    error = await exchange_failure(Recorder(oauth_error(401, "invalid_client", "bad secret")))
    assert error.definite
    assert not error.grant_revoked


@pytest.mark.parametrize(
    ("respond", "words"),
    [
        (lambda r: httpx.Response(500, json={"error": "server_error"}), "HTTP 500"),
        (lambda r: httpx.Response(503, text="upstream down"), "HTTP 503"),
        (oauth_error(429, "slow_down"), "HTTP 429"),
        (oauth_error(400, "temporarily_unavailable"), "HTTP 400"),
        (
            lambda r: httpx.Response(
                400, text="<html>WAF says no</html>", headers={"content-type": "text/html"}
            ),
            "HTML",
        ),
        (
            lambda r: httpx.Response(
                200, text="<html>login</html>", headers={"content-type": "text/html"}
            ),
            "HTML",
        ),
        (lambda r: httpx.Response(200, json={"token_type": "Bearer"}), "no access_token"),
        (lambda r: httpx.Response(200, json=["not", "an", "object"]), "not an object"),
        (lambda r: httpx.Response(302, headers={"location": "https://evil.example/"}), "302"),
        (lambda r: httpx.Response(200, content=b"{" * (MAX_BODY_BYTES + 1)), "body cap"),
    ],
    ids=[
        "500",
        "503-text",
        "429",
        "temporarily-unavailable",
        "html-400",
        "html-200",
        "no-access-token",
        "json-array",
        "redirect-not-followed",
        "oversized",
    ],
)
async def test_ambiguous_answers(respond: Callable[..., httpx.Response], words: str) -> None:
    error = await exchange_failure(Recorder(respond))
    assert not error.definite
    assert not error.grant_revoked
    assert words in error.message


async def test_connection_reset_is_ambiguous() -> None:
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer")

    error = await exchange_failure(Recorder(reset))
    assert not error.definite
    assert "connection failed" in error.message


async def test_hanging_endpoint_times_out_within_the_limit() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json={"access_token": "late"})

    started = time.monotonic()
    error = await exchange_failure(Recorder(hang), time_limit=0.2)
    assert time.monotonic() - started < 2
    assert not error.definite
    assert "timed out" in error.message


async def test_error_description_is_redacted_and_capped() -> None:
    description = f"verifier {VERIFIER} secret {SECRET}\nrefresh_token=abc " + "x" * 1000
    error = await exchange_failure(Recorder(oauth_error(400, "invalid_grant", description)))
    assert "\n" not in error.message
    assert len(error.message) < 400


# --- refresh -----------------------------------------------------------------------------------


async def test_refresh_with_rotation_replaces_the_refresh_token() -> None:
    recorder = Recorder(ok({"access_token": "at2", "refresh_token": "rt2", "expires_in": 60}))
    tokens = await do_refresh(recorder)
    assert recorder.form() == {
        "grant_type": "refresh_token",
        "refresh_token": OLD_REFRESH,
        "resource": RESOURCE,
        "client_id": "client:1",
        "client_secret": SECRET,
    }
    assert (tokens.access_token, tokens.refresh_token) == ("at2", "rt2")
    assert tokens.expires_at == NOW + timedelta(seconds=60)


async def test_refresh_without_a_new_refresh_token_keeps_the_old_one_and_scope() -> None:
    tokens = await do_refresh(Recorder(ok({"access_token": "at2", "token_type": "bearer"})))
    assert tokens.refresh_token == OLD_REFRESH
    assert tokens.scope == "read"
    assert tokens.token_type == "bearer"


async def test_refresh_invalid_grant_is_definite() -> None:
    recorder = Recorder(oauth_error(400, "invalid_grant", "refresh token reused"))
    with pytest.raises(TokenEndpointError) as info:
        await do_refresh(recorder)
    assert info.value.reason == Reason.REFRESH_FAILED
    assert info.value.grant_revoked
    assert not info.value.retryable
    assert len(recorder.requests) == 1
    assert_no_secret(info.value)


@pytest.mark.parametrize("status", [500, 502, 429], ids=["500", "502", "429"])
async def test_refresh_server_failure_is_ambiguous_and_retryable(status: int) -> None:
    recorder = Recorder(lambda r: httpx.Response(status, json={"error": "server_error"}))
    with pytest.raises(TokenEndpointError) as info:
        await do_refresh(recorder)
    assert not info.value.definite
    assert info.value.retryable
    assert len(recorder.requests) == 1


async def test_refresh_without_refresh_token_sends_nothing() -> None:
    recorder = Recorder(ok({"access_token": "never"}))
    current = TokenSet(access_token="at", obtained_at=NOW)
    with pytest.raises(TokenEndpointError) as info:
        await do_refresh(recorder, current)
    assert info.value.reason == Reason.REFRESH_FAILED
    assert recorder.requests == []


def test_token_set_round_trips_through_json() -> None:
    tokens = TokenSet(
        access_token="at", refresh_token="rt", expires_at=NOW, scope="a b", obtained_at=NOW
    )
    assert TokenSet.model_validate(json.loads(tokens.model_dump_json())) == tokens
