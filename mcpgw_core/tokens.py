"""Token endpoint client: authorization-code exchange and refresh, failures classified.

Nothing here retries. A code is single use, so an exchange that got any answer, or none, is
never sent again; the user starts a new flow. A refresh failure is either *definite* (the AS
processed the request and said no, e.g. `invalid_grant`: retrying the same request cannot help)
or *ambiguous* (timeout, connection reset, 5xx, 429, an unreadable answer: the AS may or may
not have rotated the refresh token, so the caller must delete nothing and try again later).
Only `grant_revoked` (a definite `invalid_grant`) says the stored grant itself is dead.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mcpgw_core.api import Reason, TokenEndpointAuthMethod
from mcpgw_core.errors import OAuthError
from mcpgw_core.http import BodyTooLarge, HttpError, HttpReply, read_capped
from mcpgw_core.redact import strip_control

DEFAULT_TIME_LIMIT_SECONDS: Final = 10.0
# A 4xx carrying an OAuth `error` (RFC 6749 sec. 5.2, RFC 8707 sec. 2) means the AS processed the
# request and refused it; request timeout, too early and rate limiting say nothing of the grant.
_REFUSAL_STATUSES: Final = frozenset(range(400, 500)) - {408, 425, 429}
_TEMPORARY_ERRORS: Final = frozenset({"temporarily_unavailable", "slow_down", "server_error"})
_MAX_EXPIRES_IN: Final = 10 * 365 * 24 * 3600


class TokenSet(BaseModel):
    """Tokens for one (gateway, user), with the absolute expiry computed at receipt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: str = Field(repr=False, min_length=1)
    token_type: str = "Bearer"  # noqa: S105 - a token type name, not a credential
    refresh_token: str | None = Field(None, repr=False)
    id_token: str | None = Field(None, repr=False)
    scope: str | None = None
    expires_at: datetime | None = None
    obtained_at: datetime

    def expires_within(self, seconds: float, now: datetime) -> bool:
        """Whether the access token expires less than `seconds` after `now` (never if unknown)."""
        return self.expires_at is not None and self.expires_at - now < timedelta(seconds=seconds)


@dataclass(frozen=True)
class ClientCredentials:
    """How this client authenticates at the token endpoint."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    method: TokenEndpointAuthMethod = TokenEndpointAuthMethod.CLIENT_SECRET_BASIC


class TokenEndpointError(OAuthError):
    """The token endpoint did not give tokens; `definite` tells "refused" from "unknown"."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        definite: bool,
        retryable: bool,
        error: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(reason, message, retryable=retryable)
        self.definite = definite
        self.error = error
        self.status_code = status_code

    @property
    def grant_revoked(self) -> bool:
        """The AS said the code or refresh token is invalid, expired or revoked."""
        return self.definite and self.error == "invalid_grant"


async def exchange_code(
    client: httpx.AsyncClient,
    *,
    token_endpoint: str,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    credentials: ClientCredentials,
    now: datetime,
    resource: str | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
) -> TokenSet:
    """Exchange an authorization code (with its PKCE verifier and the pinned redirect URI)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    form["code_verifier"] = code_verifier
    if resource:
        form["resource"] = resource
    secrets = (code, code_verifier, credentials.client_secret)
    data = await _token_request(
        client, token_endpoint, form, credentials, Reason.TOKEN_EXCHANGE_FAILED, secrets, time_limit
    )
    # A code never gets a second try, whatever went wrong.
    return _token_set(data, now=now, reason=Reason.TOKEN_EXCHANGE_FAILED, previous=None)


async def refresh(
    client: httpx.AsyncClient,
    *,
    token_endpoint: str,
    current: TokenSet,
    credentials: ClientCredentials,
    now: datetime,
    resource: str | None = None,
    scope: str | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
) -> TokenSet:
    """Refresh `current`; the result keeps its refresh token when the AS sends no new one.

    The caller serializes refreshes of one token set: an AS that rotates refresh tokens
    revokes the whole grant when the old one is presented twice.
    """
    if not current.refresh_token:
        raise TokenEndpointError(
            Reason.REFRESH_FAILED, "no refresh token is stored", definite=True, retryable=False
        )
    form = {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
    if scope:
        form["scope"] = scope
    if resource:
        form["resource"] = resource
    secrets = (current.refresh_token, credentials.client_secret)
    data = await _token_request(
        client, token_endpoint, form, credentials, Reason.REFRESH_FAILED, secrets, time_limit
    )
    return _token_set(data, now=now, reason=Reason.REFRESH_FAILED, previous=current)


def _token_set(
    data: dict[str, Any], *, now: datetime, reason: str, previous: TokenSet | None
) -> TokenSet:
    access_token = data.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise _ambiguous(
            reason, "token response has no access_token", retryable=previous is not None
        )
    token_type = data.get("token_type")
    refresh_token = data.get("refresh_token")
    id_token = data.get("id_token")
    scope = data.get("scope")
    expires_in = _seconds(data.get("expires_in"))
    return TokenSet(
        access_token=access_token,
        token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        # RFC 6749 sec. 6: the AS MAY issue a new refresh token; if not, the old one stays valid.
        refresh_token=refresh_token
        if isinstance(refresh_token, str) and refresh_token
        else (previous.refresh_token if previous else None),
        id_token=id_token if isinstance(id_token, str) and id_token else None,
        # RFC 6749 sec. 5.1: scope is omitted when it equals the one requested.
        scope=scope if isinstance(scope, str) else (previous.scope if previous else None),
        expires_at=None if expires_in is None else now + timedelta(seconds=expires_in),
        obtained_at=now,
    )


def _seconds(value: object) -> int | None:
    """`expires_in` as whole seconds; some servers send it as a string. None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int | float) and 0 <= value <= _MAX_EXPIRES_IN:
        return int(value)
    return None


async def _token_request(
    client: httpx.AsyncClient,
    url: str,
    form: dict[str, str],
    credentials: ClientCredentials,
    reason: str,
    secrets: tuple[str | None, ...],
    time_limit: float,
) -> dict[str, Any]:
    """POST `form` once and return the JSON object of a 200, or raise `TokenEndpointError`."""
    headers = {"Accept": "application/json"}
    method = TokenEndpointAuthMethod(credentials.method)
    if method is TokenEndpointAuthMethod.CLIENT_SECRET_BASIC:
        if credentials.client_secret is None:
            raise ValueError("client_secret_basic needs a client secret")
        headers["Authorization"] = _basic(credentials.client_id, credentials.client_secret)
    else:
        form = {**form, "client_id": credentials.client_id}
        if method is TokenEndpointAuthMethod.CLIENT_SECRET_POST:
            if credentials.client_secret is None:
                raise ValueError("client_secret_post needs a client secret")
            form["client_secret"] = credentials.client_secret
    reply = await _post_form(client, url, form, headers, reason, time_limit)
    retry = reason == Reason.REFRESH_FAILED
    if reply.status_code == 200:
        try:
            return reply.json_object(reason=reason)
        except HttpError as exc:
            raise _ambiguous(reason, f"HTTP 200 but {exc.detail}", retryable=retry) from None
    code = _error_code(reply)
    definite = reply.status_code in _REFUSAL_STATUSES and (
        code is not None and code not in _TEMPORARY_ERRORS
    )
    message = f"token endpoint answered {reply.status_detail(secrets=secrets)}"
    if "html" in reply.headers.get("content-type", "").lower():
        message += " with an HTML page"
    raise TokenEndpointError(
        reason,
        message,
        definite=definite,
        retryable=retry and not definite,
        error=code,
        status_code=reply.status_code,
    )


def _error_code(reply: HttpReply) -> str | None:
    try:
        body = reply.json_object(reason=Reason.TOKEN_EXCHANGE_FAILED)
    except HttpError:
        return None
    code = body.get("error")
    if not isinstance(code, str) or not code or len(code) > 64 or not code.isascii():
        return None
    return strip_control(code)


def _basic(client_id: str, client_secret: str) -> str:
    # RFC 6749 sec. 2.3.1: form-encode both parts before base64, so ':' in an id stays unambiguous.
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _ambiguous(reason: str, message: str, *, retryable: bool) -> TokenEndpointError:
    return TokenEndpointError(reason, message, definite=False, retryable=retryable)


# --- Transport. Local rather than `mcpgw_core.http.send` because every transport failure here
# --- must become an ambiguous `TokenEndpointError` (delete nothing, maybe retry), which the
# --- refresher and the callback decide on; the body cap is the shared one.


async def _post_form(
    client: httpx.AsyncClient,
    url: str,
    form: dict[str, str],
    headers: dict[str, str],
    reason: str,
    time_limit: float,
) -> HttpReply:
    retry = reason == Reason.REFRESH_FAILED
    try:
        request = client.build_request("POST", url, data=form, headers=headers)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise TokenEndpointError(
            reason, "token endpoint URL is unusable", definite=False, retryable=False
        ) from exc
    try:
        # httpx's timeouts are per operation; a server dripping bytes needs an overall deadline.
        async with asyncio.timeout(time_limit):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                content: bytes | None = await read_capped(response)
            except BodyTooLarge:
                content = None
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise _ambiguous(
            reason, f"token endpoint timed out after {time_limit:g} s", retryable=retry
        ) from exc
    except httpx.TransportError as exc:
        raise _ambiguous(
            reason, f"token endpoint connection failed ({type(exc).__name__})", retryable=retry
        ) from exc
    if content is None:
        raise _ambiguous(reason, "token endpoint answer exceeds the body cap", retryable=retry)
    return HttpReply("POST", url, response.status_code, response.headers, content)
