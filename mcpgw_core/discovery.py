"""Discovery of an MCP server's authorization server: the result type, `discover` and its cache.

The network steps live in `discovery_steps`. The cache keeps authorization server metadata per
issuer and protected resource metadata per MCP server URL, so 200 gateways behind one
authorization server fetch its metadata once. Failures are not cached (the caller's backoff
spaces retries), but concurrent callers share one attempt. Time comes from the caller's `now`
or an injected clock, so tests move time without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import httpx

from mcpgw_core.discovery_steps import (
    DiscoveryError,
    ResourceDiscovery,
    ServerDiscovery,
    discover_authorization_server,
    discover_protected_resource,
)
from mcpgw_core.metadata import AuthorizationServerMetadata, Hop, ProtectedResourceMetadata

__all__ = ["Discovery", "DiscoveryError", "MetadataCache", "combine", "discover"]

DEFAULT_TTL_SECONDS: Final = 300.0
DEFAULT_MAX_ENTRIES: Final = 4096

V = TypeVar("V")


@dataclass(frozen=True)
class Discovery:
    """Everything discovery found for one MCP server, with every hop in order."""

    resource_url: str
    authorization_server: AuthorizationServerMetadata
    hops: tuple[Hop, ...]
    protected_resource: ProtectedResourceMetadata | None = None
    # RFC 6750 `scope` of the 401 challenge: what the server says a token needs.
    challenge_scope: str | None = None

    @property
    def issuer(self) -> str:
        return self.authorization_server.issuer

    @property
    def resource(self) -> str:
        """The resource identifier to request tokens for (RFC 8707)."""
        return self.protected_resource.resource if self.protected_resource else self.resource_url

    @property
    def resource_metadata_url(self) -> str | None:
        return self.protected_resource.metadata_url if self.protected_resource else None

    @property
    def authorization_endpoint(self) -> str:
        return self.authorization_server.authorization_endpoint

    @property
    def token_endpoint(self) -> str:
        return self.authorization_server.token_endpoint

    @property
    def registration_endpoint(self) -> str | None:
        return self.authorization_server.registration_endpoint

    @property
    def raw_metadata(self) -> Mapping[str, Any]:
        return self.authorization_server.raw


def combine(
    resource_url: str, resource: ResourceDiscovery | None, server: ServerDiscovery
) -> Discovery:
    """Join the two steps (either possibly from the cache) into one `Discovery`."""
    return Discovery(
        resource_url=resource_url,
        authorization_server=server.metadata,
        hops=(resource.hops if resource else ()) + server.hops,
        protected_resource=resource.metadata if resource else None,
        challenge_scope=resource.challenge_scope if resource else None,
    )


async def discover(
    client: httpx.AsyncClient, *, resource_url: str, issuer: str | None
) -> Discovery:
    """Find and validate the authorization server of the MCP server at `resource_url`.

    A given `issuer` skips the RFC 9728 step. Raises `DiscoveryError`.
    """
    resource = None
    if issuer is None:
        resource = await discover_protected_resource(client, resource_url)
        issuer = resource.metadata.authorization_servers[0]
    server = await discover_authorization_server(client, issuer)
    return combine(resource_url, resource, server)


class _SingleFlightTTL(Generic[V]):
    """Values by key until they expire; one fetch in flight per key, shared by all waiters."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._values: dict[str, tuple[float, V]] = {}
        self._inflight: dict[str, asyncio.Future[V]] = {}

    async def get(self, key: str, now: float, fetch: Callable[[], Awaitable[V]]) -> V:
        entry = self._values.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(fetch())
            self._inflight[key] = future
            # Expiry counts from the start of the fetch: never later than the truth.
            future.add_done_callback(lambda done: self._settle(key, now + self._ttl, done))
        # Shielded: one waiter being cancelled must not cancel the fetch the others wait for.
        return await asyncio.shield(future)

    def _settle(self, key: str, expires: float, done: asyncio.Future[V]) -> None:
        self._inflight.pop(key, None)
        # exception() also marks a failure as retrieved when every waiter was cancelled.
        if done.cancelled() or done.exception() is not None:
            return
        self._values.pop(key, None)  # re-insert at the end: dict order is age order
        self._values[key] = (expires, done.result())
        while len(self._values) > self._max_entries:
            del self._values[next(iter(self._values))]

    def invalidate(self, key: str) -> None:
        self._values.pop(key, None)

    def clear(self) -> None:
        self._values.clear()


class MetadataCache:
    """`discover` with caching; one instance per process, shared by all reconciles.

    Cached results carry the hops of the fetch that produced them.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._clock = clock
        self._resources: _SingleFlightTTL[ResourceDiscovery] = _SingleFlightTTL(ttl, max_entries)
        self._servers: _SingleFlightTTL[ServerDiscovery] = _SingleFlightTTL(ttl, max_entries)

    async def get_or_discover(
        self,
        client: httpx.AsyncClient,
        *,
        resource_url: str,
        issuer: str | None,
        now: float | None = None,
    ) -> Discovery:
        """Like `discover`, served from the cache while fresh. Raises `DiscoveryError`.

        `now` (seconds, on the same scale as the clock: epoch seconds by default) overrides the
        clock, so a reconcile can use the one `now` it was handed.
        """
        at = self._clock() if now is None else now
        resource = None
        if issuer is None:
            resource = await self._resources.get(
                resource_url, at, lambda: discover_protected_resource(client, resource_url)
            )
            issuer = resource.metadata.authorization_servers[0]
        server_issuer = issuer
        server = await self._servers.get(
            server_issuer, at, lambda: discover_authorization_server(client, server_issuer)
        )
        return combine(resource_url, resource, server)

    def invalidate(self, *, resource_url: str | None = None, issuer: str | None = None) -> None:
        """Forget entries, e.g. when the token endpoint answers as if the metadata changed."""
        if resource_url is not None:
            self._resources.invalidate(resource_url)
        if issuer is not None:
            self._servers.invalidate(issuer)

    def clear(self) -> None:
        self._resources.clear()
        self._servers.clear()
