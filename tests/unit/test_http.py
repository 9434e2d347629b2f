"""The HTTP client module: settings, body cap, strict JSON, transport faults, OAuth errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from mcpgw_core.api import Reason
from mcpgw_core.errors import OAuthError
from mcpgw_core.http import MAX_BODY_BYTES, USER_AGENT, HttpError, build_client, send
from tests.support.fake_http import FakeHTTP

URL = "https://as.example.test/doc"


async def test_client_has_timeouts_no_redirects_no_env_and_a_user_agent() -> None:
    async with build_client(timeout=7.0, connect_timeout=2.0) as client:
        assert client.follow_redirects is False
        assert client.timeout == httpx.Timeout(7.0, connect=2.0)
        assert client.headers["user-agent"] == USER_AGENT
        assert client.trust_env is False


async def test_redirect_is_returned_not_followed() -> None:
    fake = FakeHTTP()
    fake.status("GET", URL, 302, headers={"location": "https://elsewhere.test/x"})
    async with fake.client() as client:
        reply = await send(client, "GET", URL)
    assert reply.status_code == 302
    assert reply.status_detail() == "HTTP 302 (redirects are not followed)"
    assert fake.urls() == [f"GET {URL}"]


@pytest.mark.parametrize(
    ("content", "content_type", "detail"),
    [
        pytest.param(b"<html>login</html>", "text/html", "HTML (HTTP 200), not JSON", id="html"),
        pytest.param(b'{"a": 1', "application/json", "malformed JSON (HTTP 200)", id="truncated"),
        pytest.param(b"[1, 2]", "application/json", "JSON array, not an object", id="array"),
        pytest.param(b'"x"', "application/json", "JSON string, not an object", id="string"),
        pytest.param(
            b'{"a": 1, "a": 2}', "application/json", "malformed JSON (HTTP 200)", id="dup-key"
        ),
        pytest.param(b'{"a": NaN}', "application/json", "malformed JSON (HTTP 200)", id="nan"),
        pytest.param(b"\xff\xfe", "application/json", "malformed JSON (HTTP 200)", id="not-utf8"),
    ],
)
async def test_json_object_is_strict(content: bytes, content_type: str, detail: str) -> None:
    fake = FakeHTTP()
    fake.on(
        "GET",
        URL,
        lambda _: httpx.Response(200, content=content, headers={"content-type": content_type}),
    )
    async with fake.client() as client:
        reply = await send(client, "GET", URL)
    with pytest.raises(HttpError) as caught:
        reply.json_object()
    assert caught.value.reason == Reason.METADATA_INVALID
    assert caught.value.detail == detail
    assert caught.value.message == f"GET {URL}: {detail}"
    assert not caught.value.retryable


async def test_json_object_accepts_json_without_a_content_type() -> None:
    fake = FakeHTTP()
    fake.on("GET", URL, lambda _: httpx.Response(200, content=b'{"issuer": "x"}'))
    async with fake.client() as client:
        reply = await send(client, "GET", URL)
    assert reply.json_object() == {"issuer": "x"}


async def _endless_chunks() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 65536


@pytest.mark.parametrize(
    "make_response",
    [
        pytest.param(
            lambda: httpx.Response(200, content=b"{" + b" " * MAX_BODY_BYTES + b"}"),
            id="declared-length",
        ),
        pytest.param(lambda: httpx.Response(200, content=_endless_chunks()), id="streamed"),
    ],
)
async def test_body_over_the_cap_is_refused(make_response: object) -> None:
    fake = FakeHTTP()
    fake.on("GET", URL, lambda _: make_response())  # type: ignore[operator]
    async with fake.client() as client:
        with pytest.raises(HttpError) as caught:
            await asyncio.wait_for(send(client, "GET", URL), timeout=10)
    assert caught.value.reason == Reason.METADATA_INVALID
    assert caught.value.detail == "response body exceeds 256 KiB"


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        pytest.param(
            httpx.ConnectError("[Errno 111] Connection refused"), "connection refused", id="refused"
        ),
        pytest.param(
            httpx.ConnectError("[Errno -2] Name or service not known"),
            "host name did not resolve",
            id="dns",
        ),
        pytest.param(
            httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            "TLS handshake failed",
            id="tls",
        ),
        pytest.param(httpx.ConnectTimeout("timed out"), "connect timed out", id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("timed out"), "timed out", id="read-timeout"),
        pytest.param(
            httpx.RemoteProtocolError("peer closed connection at 10.1.2.3:4711"),
            "server broke the HTTP protocol or closed the connection",
            id="protocol",
        ),
    ],
)
async def test_transport_faults_are_retryable_with_stable_messages(
    exc: Exception, detail: str
) -> None:
    fake = FakeHTTP()
    fake.fail("GET", URL, exc)
    async with fake.client() as client:
        with pytest.raises(HttpError) as caught:
            await send(client, "GET", URL)
    assert caught.value.reason == Reason.AUTHORIZATION_SERVER_UNREACHABLE
    assert caught.value.retryable
    assert caught.value.message == f"GET {URL}: {detail}"


async def test_overall_time_limit_bounds_a_slow_server() -> None:
    async def slow(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    fake = FakeHTTP()
    fake.on("GET", URL, slow)
    async with fake.client() as client:
        with pytest.raises(HttpError) as caught:
            await asyncio.wait_for(send(client, "GET", URL, time_limit=0.2), timeout=5)
    assert caught.value.retryable
    assert caught.value.detail == "no complete answer within 0.2 s"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_real_connection_refused() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/.well-known/openid-configuration"
    async with build_client(timeout=2.0) as client:
        with pytest.raises(HttpError) as caught:
            await send(client, "GET", url)
    assert caught.value.reason == Reason.AUTHORIZATION_SERVER_UNREACHABLE
    assert caught.value.message == f"GET {url}: connection refused"


async def test_real_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with build_client(timeout=0.3) as client:
            with pytest.raises(HttpError) as caught:
                await asyncio.wait_for(send(client, "GET", f"http://127.0.0.1:{port}/x"), 5)
    finally:
        server.close()
    assert caught.value.detail == "timed out"
    assert caught.value.retryable


async def test_invalid_url_is_not_retryable() -> None:
    async with build_client() as client:
        with pytest.raises(OAuthError) as caught:
            await send(client, "GET", "ftp://as.example.test/x")
    assert not caught.value.retryable


async def test_oauth_error_body_is_surfaced_redacted_and_capped() -> None:
    secret = "iat-0123456789abcdef"
    body = {
        "error": "invalid_client_metadata",
        "error_description": f"token {secret} is not allowed\nsee https://x" + "y" * 500,
    }
    fake = FakeHTTP()
    fake.json("POST", URL, body, status=400)
    async with fake.client() as client:
        reply = await send(client, "POST", URL, json_body={})
    failure = reply.failure(Reason.REGISTRATION_REJECTED, secrets=[secret])
    assert failure.message.startswith(
        f"POST {URL}: HTTP 400 (invalid_client_metadata: token [REDACTED] is not allowed see"
    )
    assert secret not in failure.message
    assert "\n" not in failure.message
    assert len(failure.message) < 300


async def test_server_failure_is_retryable() -> None:
    fake = FakeHTTP()
    fake.status("GET", URL, 503, text="busy")
    async with fake.client() as client:
        reply = await send(client, "GET", URL)
    failure = reply.server_failure()
    assert (failure.reason, failure.retryable) == (Reason.AUTHORIZATION_SERVER_ERROR, True)
    assert failure.message == f"GET {URL}: HTTP 503"


async def test_form_body_and_basic_auth_are_sent() -> None:
    fake = FakeHTTP()
    fake.json("POST", URL, {"ok": True})
    async with fake.client() as client:
        await send(client, "POST", URL, form_body={"a": "1 2"}, auth=("id", "pw"))
    request = fake.requests[0]
    assert request.content == b"a=1+2"
    assert request.headers["authorization"].startswith("Basic ")
