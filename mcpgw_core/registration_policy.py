"""Pure decisions about client registration: mode, auth method, grant types, body, fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from mcpgw_core.api import Reason, RegistrationMode, TokenEndpointAuthMethod
from mcpgw_core.errors import OAuthError
from mcpgw_core.metadata import AuthorizationServerMetadata, quote_remote

# Secret-based methods first: a confidential client is the safer default for a server-side
# gateway; `none` (a public client) is the last resort.
AUTH_METHOD_PREFERENCE: Final = (
    TokenEndpointAuthMethod.CLIENT_SECRET_BASIC.value,
    TokenEndpointAuthMethod.CLIENT_SECRET_POST.value,
    TokenEndpointAuthMethod.NONE.value,
)
AUTHORIZATION_CODE: Final = "authorization_code"
REFRESH_TOKEN: Final = "refresh_token"  # noqa: S105 - a grant type name


@dataclass(frozen=True)
class RegistrationRequest:
    """What we ask the authorization server to register (RFC 7591 sec. 2)."""

    client_name: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...] = ()
    # None: negotiate from the server's token_endpoint_auth_methods_supported.
    token_endpoint_auth_method: str | None = None


def choose_registration_mode(
    mode: str, has_client_secret_ref: bool, metadata: AuthorizationServerMetadata
) -> RegistrationMode:
    """The mode to use, following `Auto` in the MCP authorization spec's order; or raise.

    Returns CLIENT_ID_METADATA_DOCUMENT when that applies even though nothing serves the
    documents yet: the caller reports it, so the choice is visible rather than silently skipped.
    """
    try:
        wanted = RegistrationMode(mode)
    except ValueError:
        raise OAuthError(
            Reason.REGISTRATION_UNSUPPORTED, f"unknown registration mode {quote_remote(mode)}"
        ) from None
    has_cimd = metadata.client_id_metadata_document_supported
    has_dcr = metadata.registration_endpoint is not None
    if wanted is RegistrationMode.PRE_REGISTERED:
        if not has_client_secret_ref:
            raise OAuthError(
                Reason.CLIENT_SECRET_MISSING, "mode PreRegistered needs clientSecretRef"
            )
        return wanted
    if wanted is RegistrationMode.CLIENT_ID_METADATA_DOCUMENT:
        if not has_cimd:
            raise OAuthError(
                Reason.REGISTRATION_UNSUPPORTED,
                f"{metadata.issuer} does not advertise client_id_metadata_document_supported",
            )
        return wanted
    if wanted is RegistrationMode.DYNAMIC:
        if not has_dcr:
            raise OAuthError(
                Reason.REGISTRATION_UNSUPPORTED,
                f"{metadata.issuer} has no registration_endpoint (RFC 7591)",
            )
        return wanted
    if has_client_secret_ref:
        return RegistrationMode.PRE_REGISTERED
    if has_cimd:
        return RegistrationMode.CLIENT_ID_METADATA_DOCUMENT
    if has_dcr:
        return RegistrationMode.DYNAMIC
    raise OAuthError(
        Reason.REGISTRATION_UNSUPPORTED,
        f"{metadata.issuer} supports neither Client ID Metadata Documents nor Dynamic Client "
        "Registration; register a client there and set clientSecretRef",
    )


def negotiate_auth_method(metadata: AuthorizationServerMetadata, requested: str | None) -> str:
    """The token endpoint auth method to use: `requested` if supported, else our favourite."""
    supported = metadata.token_endpoint_auth_methods_supported
    offered = ", ".join(quote_remote(m) for m in supported) or "none listed"
    if requested is not None:
        if requested in supported:
            return str(requested)
        raise OAuthError(
            Reason.TOKEN_ENDPOINT_AUTH_METHOD_UNSUPPORTED,
            f"tokenEndpointAuthMethod {requested} is not supported by {metadata.issuer}, "
            f"which offers {offered}",
        )
    for method in AUTH_METHOD_PREFERENCE:
        if method in supported:
            return method
    raise OAuthError(
        Reason.TOKEN_ENDPOINT_AUTH_METHOD_UNSUPPORTED,
        f"{metadata.issuer} offers token endpoint auth methods {offered}; "
        f"supported here: {', '.join(AUTH_METHOD_PREFERENCE)}",
    )


def registration_grant_types(metadata: AuthorizationServerMetadata) -> tuple[str, ...]:
    """`authorization_code`, plus `refresh_token` only when the server advertises it."""
    if AUTHORIZATION_CODE not in metadata.grant_types_supported:
        raise OAuthError(
            Reason.REGISTRATION_UNSUPPORTED,
            f"{metadata.issuer} does not offer the authorization_code grant",
        )
    if metadata.response_types_supported and "code" not in metadata.response_types_supported:
        raise OAuthError(
            Reason.REGISTRATION_UNSUPPORTED, f"{metadata.issuer} does not offer response type code"
        )
    if REFRESH_TOKEN in metadata.grant_types_supported:
        return (AUTHORIZATION_CODE, REFRESH_TOKEN)
    return (AUTHORIZATION_CODE,)


def build_registration_body(
    metadata: AuthorizationServerMetadata, request: RegistrationRequest
) -> dict[str, Any]:
    """The RFC 7591 client metadata to send; raises when the server cannot serve this client."""
    if not request.redirect_uris:
        raise OAuthError(Reason.REGISTRATION_REJECTED, "no redirect URI to register")
    body: dict[str, Any] = {
        "client_name": request.client_name,
        "redirect_uris": list(request.redirect_uris),
        "grant_types": list(registration_grant_types(metadata)),
        "response_types": ["code"],
        "token_endpoint_auth_method": negotiate_auth_method(
            metadata, request.token_endpoint_auth_method
        ),
    }
    if request.scopes:
        body["scope"] = " ".join(request.scopes)
    return body


def registration_fingerprint(
    issuer: str, redirect_uris: Iterable[str], scopes: Iterable[str], auth_method: str | None
) -> str:
    """sha256 hex of the inputs that, when changed, require a new or updated registration.

    Order and repeats of redirect URIs and scopes do not matter; everything else does.
    """
    canonical = json.dumps(
        {
            "auth_method": auth_method,
            "issuer": issuer,
            "redirect_uris": sorted(set(redirect_uris)),
            "scopes": sorted(set(scopes)),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
