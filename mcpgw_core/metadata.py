"""Protected resource (RFC 9728) and authorization server (RFC 8414) metadata: types, validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from mcpgw_core.api import Reason
from mcpgw_core.errors import OAuthError
from mcpgw_core.redact import redact_text

PKCE_METHOD: Final = "S256"
# RFC 8414 sec. 2 defaults for members an authorization server may leave out.
DEFAULT_AUTH_METHODS: Final = ("client_secret_basic",)
DEFAULT_GRANT_TYPES: Final = ("authorization_code", "implicit")
# Values quoted from a remote document into a message are shortened to this.
_QUOTE_LIMIT: Final = 120


@dataclass(frozen=True)
class Hop:
    """One request made during discovery and what it gave (`ok`, an HTTP status, a failure)."""

    url: str
    outcome: str


@dataclass(frozen=True)
class ProtectedResourceMetadata:
    """The usable part of an RFC 9728 document."""

    metadata_url: str
    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...]
    raw: Mapping[str, Any] = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class AuthorizationServerMetadata:
    """The usable part of an RFC 8414 / OpenID discovery document, defaults applied.

    List members hold what the server advertised or, when it said nothing, RFC 8414's default;
    `raw` keeps the document as served.
    """

    issuer: str
    metadata_url: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    revocation_endpoint: str | None
    code_challenge_methods_supported: tuple[str, ...]
    token_endpoint_auth_methods_supported: tuple[str, ...]
    grant_types_supported: tuple[str, ...]
    response_types_supported: tuple[str, ...]
    scopes_supported: tuple[str, ...]
    client_id_metadata_document_supported: bool
    raw: Mapping[str, Any] = field(compare=False, hash=False, repr=False)


def quote_remote(value: object) -> str:
    """A value taken from a remote document, made safe and short for a message."""
    return repr(redact_text(str(value), limit=_QUOTE_LIMIT))


def check_http_url(value: object, *, name: str, allow_query: bool = True) -> str:
    """Return `value` if it is an absolute http(s) URL without a fragment, else raise."""
    if not isinstance(value, str) or not value:
        raise OAuthError(Reason.METADATA_INVALID, f"{name} is missing or not a string")
    parts = urlsplit(value)
    try:
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise OAuthError(
            Reason.METADATA_INVALID, f"{name} {quote_remote(value)} has a bad port"
        ) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise OAuthError(
            Reason.METADATA_INVALID, f"{name} {quote_remote(value)} is not an http(s) URL"
        )
    if parts.fragment or (not allow_query and parts.query):
        unwanted = "fragment" if parts.fragment else "query"
        raise OAuthError(
            Reason.METADATA_INVALID, f"{name} {quote_remote(value)} must not carry a {unwanted}"
        )
    return value


def _string_list(doc: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise OAuthError(Reason.METADATA_INVALID, f"{name} is not a list of strings")
    return tuple(value)


def _optional_url(doc: Mapping[str, Any], name: str) -> str | None:
    if doc.get(name) is None:
        return None
    return check_http_url(doc[name], name=name)


def canonical_resource(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) with case, default port and trailing slash normalised."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port
    if (scheme, port) in (("https", 443), ("http", 80)):
        port = None
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def resource_covers(advertised: str, requested: str) -> bool:
    """True when metadata for `advertised` applies to the MCP server at `requested`.

    RFC 9728 asks for the same identifier; servers commonly publish their origin or a parent
    path instead, so a same-origin parent at a path-segment boundary is accepted as well.
    """
    a_scheme, a_host, a_port, a_path = canonical_resource(advertised)
    r_scheme, r_host, r_port, r_path = canonical_resource(requested)
    if (a_scheme, a_host, a_port) != (r_scheme, r_host, r_port):
        return False
    return r_path == a_path or r_path.startswith(a_path + "/")


def parse_protected_resource(
    doc: Mapping[str, Any], *, metadata_url: str, resource_url: str
) -> ProtectedResourceMetadata:
    """Validate an RFC 9728 document fetched for the MCP server at `resource_url`.

    Error messages name no URL; the caller knows which document it fetched.
    """
    resource = check_http_url(doc.get("resource"), name="resource")
    if not resource_covers(resource, resource_url):
        raise OAuthError(
            Reason.RESOURCE_MISMATCH,
            f"describes resource {quote_remote(resource)}, not {resource_url}",
        )
    servers = _string_list(doc, "authorization_servers")
    if not servers:
        raise OAuthError(Reason.METADATA_INVALID, "authorization_servers is missing or empty")
    for server in servers:
        check_http_url(server, name="authorization_servers entry", allow_query=False)
    return ProtectedResourceMetadata(
        metadata_url=metadata_url,
        resource=resource,
        authorization_servers=servers,
        scopes_supported=_string_list(doc, "scopes_supported") or (),
        raw=dict(doc),
    )


def check_issuer_matches(doc: Mapping[str, Any], *, expected: str) -> None:
    """RFC 8414 sec. 3.3: the document's issuer must be exactly the one asked for."""
    declared = doc.get("issuer")
    if declared != expected:
        shown = "no issuer" if declared is None else f"issuer {quote_remote(declared)}"
        raise OAuthError(Reason.ISSUER_MISMATCH, f"declares {shown}, expected {expected}")


def parse_authorization_server(
    doc: Mapping[str, Any], *, issuer: str, metadata_url: str
) -> AuthorizationServerMetadata:
    """Validate an authorization server metadata document fetched for `issuer`.

    Error messages name no URL; the caller knows which document it fetched.
    """
    check_issuer_matches(doc, expected=issuer)
    authorization_endpoint = check_http_url(
        doc.get("authorization_endpoint"), name="authorization_endpoint"
    )
    token_endpoint = check_http_url(doc.get("token_endpoint"), name="token_endpoint")
    pkce_methods = _string_list(doc, "code_challenge_methods_supported")
    # MCP authorization spec: no code_challenge_methods_supported means no PKCE; refuse.
    if pkce_methods is None:
        raise OAuthError(
            Reason.PKCE_UNSUPPORTED,
            "code_challenge_methods_supported is absent, so PKCE is unsupported; S256 is required",
        )
    if PKCE_METHOD not in pkce_methods:
        offered = ", ".join(quote_remote(m) for m in pkce_methods) or "none"
        raise OAuthError(
            Reason.PKCE_UNSUPPORTED,
            f"supports PKCE methods {offered}; S256 is required",
        )
    return AuthorizationServerMetadata(
        issuer=issuer,
        metadata_url=metadata_url,
        authorization_endpoint=authorization_endpoint,
        token_endpoint=token_endpoint,
        registration_endpoint=_optional_url(doc, "registration_endpoint"),
        revocation_endpoint=_optional_url(doc, "revocation_endpoint"),
        code_challenge_methods_supported=pkce_methods,
        token_endpoint_auth_methods_supported=(
            _string_list(doc, "token_endpoint_auth_methods_supported") or DEFAULT_AUTH_METHODS
        ),
        grant_types_supported=(_string_list(doc, "grant_types_supported") or DEFAULT_GRANT_TYPES),
        response_types_supported=_string_list(doc, "response_types_supported") or (),
        scopes_supported=_string_list(doc, "scopes_supported") or (),
        client_id_metadata_document_supported=doc.get("client_id_metadata_document_supported")
        is True,
        raw=dict(doc),
    )
