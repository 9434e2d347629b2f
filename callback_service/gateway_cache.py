"""A short-lived cache of gateway client views for the authorize hot path.

Starting a flow needs the MCPGateway and its consumer Secret: two API reads that cost more CPU
(TLS, JSON, the API server's own work) than everything else the request does. Measured on the
2-core test machine (benchmarks/callback_http.py) the uncached authorize endpoint served about
85 requests/s; with this cache one replica keeps 300/s. Only `start_flow` uses it: the callback
leg reads fresh, so a token exchange always uses the client the Secret holds now, and a flow
started with a client replaced within the TTL ends in `ClientChanged` rather than a wrong
exchange. Failures are not cached. Concurrent misses for one gateway share one read.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from callback_service.gateways import GatewayClient, KubeApi, load_gateway_client
from mcpgw_core.errors import OAuthError

DEFAULT_MAX_ENTRIES: Final = 1024


class GatewayCache:
    """`load_gateway_client` results for `ttl` seconds (0 disables), at most `max_entries`."""

    def __init__(
        self,
        ttl: float = 0.0,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, GatewayClient]] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future[GatewayClient]] = {}

    async def get(self, kube: KubeApi, namespace: str, name: str) -> GatewayClient:
        """The cached view while fresh, else one read shared by every concurrent caller."""
        if self._ttl <= 0:
            return await load_gateway_client(kube, namespace, name)
        key = (namespace, name)
        found = self._entries.get(key)
        if found is not None and self._clock() < found[0]:
            return found[1]
        pending = self._pending.get(key)
        if pending is not None:
            # shield: one waiter being cancelled must not cancel the read the others wait on.
            return await asyncio.shield(pending)
        future: asyncio.Future[GatewayClient] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            client = await load_gateway_client(kube, namespace, name)
            future.set_result(client)
        except OAuthError as exc:
            future.set_exception(exc)
            # Mark retrieved, so a failure nobody else waited for is not reported as unhandled.
            future.exception()
            raise
        finally:
            del self._pending[key]
            if not future.done():
                # Cancelled, or a bug: waiters must not hang on a read that will never finish.
                future.cancel()
        self._store(key, client)
        return client

    def _store(self, key: tuple[str, str], client: GatewayClient) -> None:
        self._entries[key] = (self._clock() + self._ttl, client)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
