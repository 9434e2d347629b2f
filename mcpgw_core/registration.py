"""Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592) over HTTP.

`register_client` raises only when the server has not accepted the registration: once it answers
with a client, that client is returned whatever else looks wrong, so the caller can persist it
before judging it (a raise here would orphan a live registration).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from mcpgw_core.api import Reason
from mcpgw_core.errors import OAuthError
from mcpgw_core.http import HttpReply, send
from mcpgw_core.metadata import AuthorizationServerMetadata, check_http_url
from mcpgw_core.redact import redact_mapping
from mcpgw_core.registration_policy import (
    RegistrationRequest,
    build_registration_body,
    choose_registration_mode,
    negotiate_auth_method,
    registration_fingerprint,
)

__all__ = [
    "RegisteredClient",
    "RegistrationGone",
    "RegistrationRequest",
    "choose_registration_mode",
    "delete_registration",
    "negotiate_auth_method",
    "read_registration",
    "register_client",
    "registration_fingerprint",
    "update_registration",
]

# RFC 6750 errors meaning "your bearer token is not accepted", whatever the status code.
_TOKEN_ERRORS = frozenset({"invalid_token", "insufficient_scope"})


class RegistrationGone(OAuthError):
    """RFC 7592: the registration no longer exists, or its access token no longer works."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.REGISTRATION_NOT_FOUND, message)


@dataclass(frozen=True)
class RegisteredClient:
    """A client as the authorization server registered it; secrets are kept out of repr()."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    client_id_issued_at: int | None = None
    # RFC 7591: 0 means the secret does not expire.
    client_secret_expires_at: int | None = None
    registration_access_token: str | None = field(default=None, repr=False)
    registration_client_uri: str | None = None
    token_endpoint_auth_method: str | None = None
    client_name: str | None = None
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    scope: str | None = None
    # The server's answer with secret values replaced: safe to log or show.
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def manageable(self) -> bool:
        """Whether RFC 7592 read, update and delete are possible."""
        return bool(self.registration_client_uri and self.registration_access_token)

    def secret_expired(self, now: float) -> bool:
        """Whether the client secret has expired at `now` (seconds since the epoch)."""
        if self.client_secret is None or not self.client_secret_expires_at:
            return False
        return self.client_secret_expires_at <= now

    def missing_redirect_uris(self, wanted: Iterable[str]) -> tuple[str, ...]:
        """Redirect URIs we asked for that the server did not register (empty when unknown)."""
        if not self.redirect_uris:
            return ()
        return tuple(uri for uri in wanted if uri not in self.redirect_uris)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def parse_registered_client(
    doc: Mapping[str, Any],
    *,
    what: str,
    registration_client_uri: str | None = None,
    registration_access_token: str | None = None,
    client_secret: str | None = None,
) -> RegisteredClient:
    """Read a registration response; the keyword values fill in what the server left out.

    RFC 7592 lets a read or update omit a registration access token that stays valid, so the
    one in use is kept; the same for the management URI and the secret.
    """
    client_id = _str_or_none(doc.get("client_id"))
    if client_id is None:
        raise OAuthError(Reason.REGISTRATION_REJECTED, f"{what}: answer has no client_id")
    uri = _str_or_none(doc.get("registration_client_uri"))
    if uri is not None:
        try:
            check_http_url(uri, name="registration_client_uri")
        except OAuthError:
            uri = None  # unusable for management; keep the client itself
    return RegisteredClient(
        client_id=client_id,
        client_secret=_str_or_none(doc.get("client_secret")) or client_secret,
        client_id_issued_at=_int_or_none(doc.get("client_id_issued_at")),
        client_secret_expires_at=_int_or_none(doc.get("client_secret_expires_at")),
        registration_access_token=_str_or_none(doc.get("registration_access_token"))
        or registration_access_token,
        registration_client_uri=uri or registration_client_uri,
        token_endpoint_auth_method=_str_or_none(doc.get("token_endpoint_auth_method")),
        client_name=_str_or_none(doc.get("client_name")),
        redirect_uris=_str_tuple(doc.get("redirect_uris")),
        grant_types=_str_tuple(doc.get("grant_types")),
        scope=_str_or_none(doc.get("scope")),
        metadata=redact_mapping(doc),
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _management_failure(reply: HttpReply, secrets: tuple[str | None, ...]) -> OAuthError:
    if reply.is_server_error:
        return reply.server_failure(secrets=secrets)
    if reply.status_code in (401, 404):
        return RegistrationGone(f"{reply.what}: {reply.status_detail(secrets=secrets)}")
    if reply.status_code == 405:
        return reply.failure(Reason.REGISTRATION_UNSUPPORTED, secrets=secrets)
    return reply.failure(Reason.REGISTRATION_REJECTED, secrets=secrets)


async def register_client(
    client: httpx.AsyncClient,
    metadata: AuthorizationServerMetadata,
    request: RegistrationRequest,
    *,
    initial_access_token: str | None,
) -> RegisteredClient:
    """Register a client (RFC 7591). A retryable failure may still have created one."""
    endpoint = metadata.registration_endpoint
    if endpoint is None:
        raise OAuthError(
            Reason.REGISTRATION_UNSUPPORTED,
            f"{metadata.issuer} has no registration_endpoint (RFC 7591)",
        )
    body = build_registration_body(metadata, request)
    secrets = (initial_access_token,)
    reply = await send(
        client,
        "POST",
        endpoint,
        json_body=body,
        headers=_bearer(initial_access_token) if initial_access_token else None,
        invalid_reason=Reason.REGISTRATION_REJECTED,
    )
    if reply.status_code in (200, 201):
        return parse_registered_client(
            reply.json_object(reason=Reason.REGISTRATION_REJECTED), what=reply.what
        )
    if reply.is_server_error:
        raise reply.server_failure(secrets=secrets)
    error = reply.oauth_error(secrets=secrets) or ""
    if reply.status_code in (401, 403) or error.split(":")[0] in _TOKEN_ERRORS:
        hint = (
            "the initial access token was rejected"
            if initial_access_token
            else "the server requires an initial access token (initialAccessTokenRef)"
        )
        detail = reply.status_detail(secrets=secrets)
        raise OAuthError(Reason.INITIAL_ACCESS_TOKEN_INVALID, f"{reply.what}: {detail}; {hint}")
    raise reply.failure(Reason.REGISTRATION_REJECTED, secrets=secrets)


def _parse_managed(
    reply: HttpReply, uri: str, token: str, client_secret: str | None
) -> RegisteredClient:
    return parse_registered_client(
        reply.json_object(reason=Reason.REGISTRATION_REJECTED),
        what=reply.what,
        registration_client_uri=uri,
        registration_access_token=token,
        client_secret=client_secret,
    )


async def read_registration(
    client: httpx.AsyncClient,
    registration_client_uri: str,
    registration_access_token: str,
    *,
    client_secret: str | None = None,
) -> RegisteredClient:
    """Read the registration (RFC 7592 sec. 2.1). Raises `RegistrationGone` on 401/404.

    The token, the URI and `client_secret` (the one held) are kept when the answer omits them.
    """
    reply = await send(
        client,
        "GET",
        registration_client_uri,
        headers=_bearer(registration_access_token),
        invalid_reason=Reason.REGISTRATION_REJECTED,
    )
    if reply.status_code != 200:
        raise _management_failure(reply, (registration_access_token, client_secret))
    return _parse_managed(reply, registration_client_uri, registration_access_token, client_secret)


async def update_registration(
    client: httpx.AsyncClient,
    metadata: AuthorizationServerMetadata,
    request: RegistrationRequest,
    *,
    client_id: str,
    registration_client_uri: str,
    registration_access_token: str,
    client_secret: str | None = None,
) -> RegisteredClient:
    """Replace the registration's metadata (RFC 7592 sec. 2.2) with what `request` asks for.

    Raises `RegistrationGone` on 401/404, `RegistrationRejected` when the server refuses the
    new metadata (the old registration then stands unchanged).
    """
    body = build_registration_body(metadata, request)
    # RFC 7592 sec. 2.2: client_id is required; client_secret may be sent and must then match.
    body["client_id"] = client_id
    if client_secret is not None:
        body["client_secret"] = client_secret
    reply = await send(
        client,
        "PUT",
        registration_client_uri,
        json_body=body,
        headers=_bearer(registration_access_token),
        invalid_reason=Reason.REGISTRATION_REJECTED,
    )
    if reply.status_code != 200:
        raise _management_failure(reply, (registration_access_token, client_secret))
    return _parse_managed(reply, registration_client_uri, registration_access_token, client_secret)


async def delete_registration(
    client: httpx.AsyncClient,
    registration_client_uri: str,
    registration_access_token: str,
    *,
    client_secret: str | None = None,
) -> bool:
    """Delete the registration (RFC 7592 sec. 2.3): True if deleted, False if already gone.

    401 and 404 both mean gone: RFC 7592 answers 401 for a client that no longer exists.
    `client_secret` is never sent; given, it is redacted should the server quote it back.
    """
    reply = await send(
        client,
        "DELETE",
        registration_client_uri,
        headers=_bearer(registration_access_token),
        invalid_reason=Reason.REGISTRATION_REJECTED,
    )
    if reply.status_code in (200, 204):
        return True
    failure = _management_failure(reply, (registration_access_token, client_secret))
    if isinstance(failure, RegistrationGone):
        return False
    raise failure
