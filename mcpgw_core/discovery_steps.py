"""The two network steps of discovery, each trying candidate URLs in the spec's order.

Protected resource metadata (RFC 9728) comes from the `resource_metadata` of the server's 401
challenge, else from its well-known URLs (path-inserted, then root). Authorization server
metadata is tried at RFC 8414 path-inserted, OpenID discovery path-inserted, then OpenID
discovery appended. Every request is recorded as a hop, on success and on failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from mcpgw_core.api import Reason
from mcpgw_core.errors import OAuthError
from mcpgw_core.http import HttpError, send
from mcpgw_core.metadata import (
    AuthorizationServerMetadata,
    Hop,
    ProtectedResourceMetadata,
    check_http_url,
    parse_authorization_server,
    parse_protected_resource,
)
from mcpgw_core.redact import redact_text
from mcpgw_core.www_authenticate import ChallengeSyntaxError, bearer_param, parse_challenges

_PROTECTED_RESOURCE: Final = "/.well-known/oauth-protected-resource"
_OAUTH_SERVER: Final = "/.well-known/oauth-authorization-server"
_OPENID: Final = "/.well-known/openid-configuration"
# What an MCP client sends; some servers answer 406 to anything else before checking auth.
_PROBE_ACCEPT: Final = "application/json, text/event-stream"

# When no candidate document is usable, the most telling failure names the reason.
_REASON_PRECEDENCE: Final = (
    Reason.PKCE_UNSUPPORTED,
    Reason.ISSUER_MISMATCH,
    Reason.RESOURCE_MISMATCH,
    Reason.METADATA_INVALID,
)

T = TypeVar("T")


class DiscoveryError(OAuthError):
    """Discovery failed; `hops` records every request made, for status."""

    def __init__(self, reason: str, message: str, *, retryable: bool, hops: Sequence[Hop]) -> None:
        super().__init__(reason, message, retryable=retryable)
        self.hops = tuple(hops)


@dataclass(frozen=True)
class ResourceDiscovery:
    """The RFC 9728 step: the metadata, the challenge's `scope` (if any) and its hops."""

    metadata: ProtectedResourceMetadata
    challenge_scope: str | None
    hops: tuple[Hop, ...]


@dataclass(frozen=True)
class ServerDiscovery:
    """The RFC 8414 / OpenID discovery step: the metadata and its hops."""

    metadata: AuthorizationServerMetadata
    hops: tuple[Hop, ...]


def _origin_and_path(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    # RFC 8414 sec. 3.1 and RFC 9728 sec. 3.1: a terminating "/" is removed before insertion.
    return origin, parts.path.rstrip("/"), parts.query


def protected_resource_metadata_urls(resource_url: str) -> list[str]:
    """Well-known RFC 9728 URLs for an MCP server: path-inserted first, then the root."""
    origin, path, query = _origin_and_path(resource_url)
    urls = [f"{origin}{_PROTECTED_RESOURCE}{path}" + (f"?{query}" if query else "")]
    root = f"{origin}{_PROTECTED_RESOURCE}"
    return urls if root in urls else [*urls, root]


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Metadata URLs for an issuer, in the MCP authorization spec's order, without repeats."""
    origin, path, _ = _origin_and_path(issuer)
    urls = [
        f"{origin}{_OAUTH_SERVER}{path}",
        f"{origin}{_OPENID}{path}",
        f"{origin}{path}{_OPENID}",
    ]
    return list(dict.fromkeys(urls))


async def discover_protected_resource(
    client: httpx.AsyncClient, resource_url: str
) -> ResourceDiscovery:
    """The RFC 9728 step: probe the MCP server, then fetch its protected resource metadata."""
    _check_input_url(resource_url, name="MCP server URL", hops=[])
    hops: list[Hop] = []
    challenge_url, scope = await _probe_resource(client, resource_url, hops)
    candidates = list(
        dict.fromkeys(
            [*filter(None, [challenge_url]), *protected_resource_metadata_urls(resource_url)]
        )
    )

    def parse(url: str, doc: dict[str, Any]) -> ProtectedResourceMetadata:
        return parse_protected_resource(doc, metadata_url=url, resource_url=resource_url)

    metadata = await _first_usable(
        client,
        candidates,
        parse,
        what=f"protected resource metadata for {resource_url}",
        hops=hops,
        unreachable_reason=Reason.DISCOVERY_FAILED,
    )
    return ResourceDiscovery(metadata, scope, tuple(hops))


async def discover_authorization_server(client: httpx.AsyncClient, issuer: str) -> ServerDiscovery:
    """The RFC 8414 / OpenID discovery step for `issuer`, checking the issuer and PKCE S256."""
    hops: list[Hop] = []
    _check_input_url(issuer, name="issuer", hops=hops, allow_query=False)

    def parse(url: str, doc: dict[str, Any]) -> AuthorizationServerMetadata:
        return parse_authorization_server(doc, issuer=issuer, metadata_url=url)

    metadata = await _first_usable(
        client,
        authorization_server_metadata_urls(issuer),
        parse,
        what=f"authorization server metadata for issuer {issuer}",
        hops=hops,
        unreachable_reason=Reason.AUTHORIZATION_SERVER_UNREACHABLE,
    )
    return ServerDiscovery(metadata, tuple(hops))


def _check_input_url(url: str, *, name: str, hops: list[Hop], allow_query: bool = True) -> None:
    try:
        check_http_url(url, name=name, allow_query=allow_query)
    except OAuthError as exc:
        raise DiscoveryError(
            Reason.DISCOVERY_FAILED, exc.message, retryable=False, hops=hops
        ) from None


async def _probe_resource(
    client: httpx.AsyncClient, resource_url: str, hops: list[Hop]
) -> tuple[str | None, str | None]:
    """Ask the MCP server without a token; its 401 may name the metadata URL and scope."""
    try:
        # The body is never read: an MCP server that needs no token may open an endless stream.
        reply = await send(
            client, "GET", resource_url, headers={"Accept": _PROBE_ACCEPT}, read_body=False
        )
    except HttpError as exc:
        hops.append(Hop(resource_url, exc.detail))
        # The well-known URLs live on the same origin, so they cannot be reached either.
        raise DiscoveryError(
            Reason.DISCOVERY_FAILED, f"MCP server {exc.message}", retryable=exc.retryable, hops=hops
        ) from exc
    if reply.status_code != 401:
        hops.append(Hop(resource_url, f"HTTP {reply.status_code}, no authentication challenge"))
        return None, None
    try:
        challenges = parse_challenges(reply.headers.get_list("www-authenticate"))
    except ChallengeSyntaxError:
        hops.append(Hop(resource_url, "HTTP 401, malformed WWW-Authenticate"))
        return None, None
    metadata_url = bearer_param(challenges, "resource_metadata")
    scope = bearer_param(challenges, "scope")
    scope = redact_text(scope, limit=1000) if scope else None
    if metadata_url is None:
        hops.append(Hop(resource_url, "HTTP 401 without resource_metadata"))
        return None, scope
    try:
        check_http_url(metadata_url, name="resource_metadata")
    except OAuthError:
        hops.append(Hop(resource_url, "HTTP 401, resource_metadata is not an http(s) URL"))
        return None, scope
    hops.append(Hop(resource_url, "HTTP 401 with resource_metadata"))
    return metadata_url, scope


async def _first_usable(
    client: httpx.AsyncClient,
    candidates: Sequence[str],
    parse: Callable[[str, dict[str, Any]], T],
    *,
    what: str,
    hops: list[Hop],
    unreachable_reason: str,
) -> T:
    """Fetch candidates in order and return the first one that parses; else raise one error."""
    first_hop = len(hops)
    failures: list[OAuthError] = []
    unreachable: set[str] = set()
    for url in candidates:
        origin = _origin_and_path(url)[0]
        if origin in unreachable:
            continue  # a refused connection will not be accepted for the next path
        try:
            return await _fetch_candidate(client, url, parse, hops)
        except OAuthError as exc:
            failures.append(exc)
            if exc.reason == Reason.AUTHORIZATION_SERVER_UNREACHABLE:
                unreachable.add(origin)
    tried = "; ".join(f"{hop.url} ({hop.outcome})" for hop in hops[first_hop:])
    reason, retryable = _summary_reason(failures)
    if reason == Reason.AUTHORIZATION_SERVER_UNREACHABLE:
        reason = unreachable_reason
    raise DiscoveryError(reason, f"no usable {what}: {tried}", retryable=retryable, hops=hops)


def _summary_reason(failures: Sequence[OAuthError]) -> tuple[str, bool]:
    for failure in failures:
        if failure.retryable:
            return failure.reason, True
    reasons = {failure.reason for failure in failures}
    for reason in _REASON_PRECEDENCE:
        if reason in reasons:
            return reason, False
    return Reason.DISCOVERY_FAILED, False


async def _fetch_candidate(
    client: httpx.AsyncClient,
    url: str,
    parse: Callable[[str, dict[str, Any]], T],
    hops: list[Hop],
) -> T:
    try:
        reply = await send(client, "GET", url)
        if reply.status_code != 200:
            if reply.is_server_error:
                raise reply.server_failure()
            raise reply.failure(Reason.DISCOVERY_FAILED)
        result = parse(url, reply.json_object())
    except HttpError as exc:
        hops.append(Hop(url, exc.detail))
        raise
    except OAuthError as exc:
        hops.append(Hop(url, f"{exc.reason}: {exc.message}"))
        raise
    hops.append(Hop(url, "ok"))
    return result
