"""The one HTTP client of the protocol core, for authorization servers and MCP servers.

Every call has a timeout, redirects are never followed (a redirect could carry a credential to
another host), response bodies are capped and JSON is parsed strictly. Transport failures become
`OAuthError`s with stable, secret-free messages; what an HTTP status means is left to the caller,
who knows whether a 404 ends discovery or only one of its hops.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from mcpgw_core.api import Reason
from mcpgw_core.errors import OAuthError
from mcpgw_core.redact import cap, redact_text, strip_control

USER_AGENT: Final = "mcpgw-operator/0.1 (MCP gateway OAuth operator)"
MAX_BODY_BYTES: Final = 256 * 1024
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
DEFAULT_CONNECT_TIMEOUT_SECONDS: Final = 5.0
# Overall limit for one request, body included.
DEFAULT_TIME_LIMIT_SECONDS: Final = 20.0

# RFC 6749 sec. 5.2: `error` is a short ASCII code; anything else in that field is noise.
_ERROR_CODE_LIMIT: Final = 64
_ERROR_DESCRIPTION_LIMIT: Final = 200


def build_client(
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    verify: ssl.SSLContext | str | bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """Build the shared client; `transport` lets tests substitute an `httpx.MockTransport`."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        verify=verify,
        transport=transport,
        # Proxy settings from the environment would silently reroute AS traffic; opt in only.
        trust_env=False,
    )


class HttpError(OAuthError):
    """An `OAuthError` about one request; `detail` is the short outcome without the URL."""

    def __init__(self, reason: str, what: str, detail: str, *, retryable: bool = False) -> None:
        super().__init__(reason, f"{what}: {detail}", retryable=retryable)
        self.detail = detail


@dataclass(frozen=True)
class HttpReply:
    """A response read up to the body cap; `content` is empty when the body was not read."""

    method: str
    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def what(self) -> str:
        return f"{self.method} {self.url}"

    @property
    def is_server_error(self) -> bool:
        # 429 is the server asking us to come back later: as retryable as a 503.
        return self.status_code >= 500 or self.status_code == 429

    def json_object(self, *, reason: str = Reason.METADATA_INVALID) -> dict[str, Any]:
        """Parse the body as one JSON object, strictly, or raise a non-retryable `OAuthError`."""
        content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if "html" in content_type:
            raise HttpError(reason, self.what, f"HTML (HTTP {self.status_code}), not JSON")
        try:
            value = json.loads(
                self.content,
                object_pairs_hook=_reject_duplicate_keys,
                parse_constant=_reject_constant,
            )
        except (ValueError, RecursionError):
            # The decoder's message quotes the body; keep only that it failed.
            raise HttpError(
                reason, self.what, f"malformed JSON (HTTP {self.status_code})"
            ) from None
        if not isinstance(value, dict):
            raise HttpError(reason, self.what, f"JSON {_json_type(value)}, not an object")
        return value

    def oauth_error(self, *, secrets: Iterable[str | None] = ()) -> str | None:
        """`error: error_description` of an OAuth error body, redacted; None if there is none."""
        try:
            body = json.loads(self.content)
        except (ValueError, RecursionError):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return None
        code = cap(strip_control(body["error"]), _ERROR_CODE_LIMIT)
        code = redact_text(code, secrets=secrets, limit=_ERROR_CODE_LIMIT)
        description = body.get("error_description")
        if isinstance(description, str) and description.strip():
            text = redact_text(description, secrets=secrets, limit=_ERROR_DESCRIPTION_LIMIT)
            return f"{code}: {text}"
        return code

    def status_detail(self, *, secrets: Iterable[str | None] = ()) -> str:
        """`HTTP <n>` plus the redacted OAuth error when the body carries one."""
        if 300 <= self.status_code < 400:
            return f"HTTP {self.status_code} (redirects are not followed)"
        detail = self.oauth_error(secrets=secrets)
        return f"HTTP {self.status_code} ({detail})" if detail else f"HTTP {self.status_code}"

    def failure(
        self, reason: str, *, retryable: bool = False, secrets: Iterable[str | None] = ()
    ) -> HttpError:
        """An error describing this reply under the caller's `reason`."""
        detail = self.status_detail(secrets=secrets)
        return HttpError(reason, self.what, detail, retryable=retryable)

    def server_failure(self, *, secrets: Iterable[str | None] = ()) -> HttpError:
        """The retryable error for a 5xx or 429 answer."""
        return self.failure(Reason.AUTHORIZATION_SERVER_ERROR, retryable=True, secrets=secrets)


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two `issuer`s in one document would let two parsers disagree on which one counts.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    json_body: Mapping[str, Any] | None = None,
    form_body: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    read_body: bool = True,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
    invalid_reason: str = Reason.METADATA_INVALID,
) -> HttpReply:
    """Send one request and read at most `MAX_BODY_BYTES` of the answer within `time_limit`.

    Raises `HttpError` (an `OAuthError`) for transport failures and timeouts (retryable,
    `AuthorizationServerUnreachable`), and for an unusable URL or an oversized body
    (`invalid_reason`). Any HTTP status is returned, not raised. `read_body=False` returns after
    the headers, for endpoints that may stream forever.
    """
    what = f"{method} {url}"
    try:
        request = client.build_request(
            method, url, json=json_body, data=form_body, headers=dict(headers or {})
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise HttpError(invalid_reason, what, "invalid URL") from exc
    try:
        # httpx's timeouts are per read; a server dripping bytes needs an overall deadline.
        async with asyncio.timeout(time_limit):
            response = await client.send(request, stream=True, auth=auth)
            try:
                content = await read_capped(response) if read_body else b""
            finally:
                await response.aclose()
    except httpx.UnsupportedProtocol as exc:
        raise HttpError(invalid_reason, what, "unsupported URL scheme") from exc
    except TimeoutError as exc:
        raise HttpError(
            Reason.AUTHORIZATION_SERVER_UNREACHABLE,
            what,
            f"no complete answer within {time_limit:g} s",
            retryable=True,
        ) from exc
    except httpx.TimeoutException as exc:
        raise HttpError(
            Reason.AUTHORIZATION_SERVER_UNREACHABLE, what, _timeout_kind(exc), retryable=True
        ) from exc
    except httpx.TransportError as exc:
        raise HttpError(
            Reason.AUTHORIZATION_SERVER_UNREACHABLE, what, _transport_kind(exc), retryable=True
        ) from exc
    except BodyTooLarge as exc:
        raise HttpError(
            invalid_reason, what, f"response body exceeds {MAX_BODY_BYTES // 1024} KiB"
        ) from exc
    return HttpReply(method, url, response.status_code, response.headers, content)


class BodyTooLarge(Exception):
    """The response body passed `MAX_BODY_BYTES`."""


async def read_capped(response: httpx.Response) -> bytes:
    """The streamed body, or `BodyTooLarge` past `MAX_BODY_BYTES` (declared or read)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


_DNS_FAILURE_MARKERS: Final = ("name or service", "nodename", "getaddrinfo", "name resolution")


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    return "timed out"


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _transport_kind(exc: httpx.TransportError) -> str:
    # The library's text carries OS error numbers and addresses; classify into a stable phrase,
    # by the underlying exception where there is one (httpx's own text can be generic).
    if isinstance(exc, httpx.ConnectError):
        causes = _causes(exc)
        text = " ".join(str(cause) for cause in causes).lower()
        if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
            return "connection refused"
        if any(isinstance(c, socket.gaierror) for c in causes) or any(
            m in text for m in _DNS_FAILURE_MARKERS
        ):
            return "host name did not resolve"
        if any(isinstance(c, ssl.SSLError) for c in causes) or any(
            m in text for m in ("ssl", "certificate", "tls")
        ):
            return "TLS handshake failed"
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "server broke the HTTP protocol or closed the connection"
    return "connection error"
