"""The clients one app instance holds: state store, key ring, HTTP, Kubernetes, metrics, clock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from callback_service.gateway_cache import GatewayCache
from callback_service.gateways import KubeApi
from callback_service.link_store import LinkStore, LinkStoreApi
from callback_service.metrics import Metrics
from callback_service.settings import CallbackSettings
from mcpgw_core.http import build_client
from mcpgw_core.keyring import KeyRing, KeyRingError
from mcpgw_core.kube import Kube
from mcpgw_core.state_store import FlowRecord, StateStore

log = logging.getLogger(__name__)


class FlowStore(Protocol):
    """The part of `mcpgw_core.state_store.StateStore` the routes use."""

    async def create(self, record: FlowRecord, ttl: float) -> None: ...

    async def consume(self, nonce: str) -> FlowRecord: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class KeySource:
    """The mounted key ring, loaded lazily and re-read when its files change.

    A reload that fails keeps the last good keys (flows in flight keep working) and is logged;
    only a service that never loaded a key refuses to sign or verify.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._ring: KeyRing | None = None
        self.last_error: str | None = None

    @classmethod
    def of(cls, ring: KeyRing) -> KeySource:
        source = cls(Path("/nonexistent"))
        source._ring = ring
        return source

    def current(self) -> KeyRing:
        """The ring to use now, or `KeyRingError` (HMACKeyMissing) when none was ever loaded."""
        if self._ring is None:
            try:
                self._ring = KeyRing.from_directory(self._directory)
            except KeyRingError as exc:
                self.last_error = exc.message
                raise
            self.last_error = None
            return self._ring
        try:
            if self._ring.reload_if_changed():
                log.info("state key ring reloaded; signing key id %s", self._ring.kids[0])
            self.last_error = None
        except KeyRingError as exc:
            if exc.message != self.last_error:
                log.warning("keeping the previous state keys: %s", exc.message)
            self.last_error = exc.message
        return self._ring


@dataclass
class Resources:
    """Built by the lifespan; routes reach it through `dependencies.ResourcesDep`."""

    store: FlowStore
    keys: KeySource
    http: httpx.AsyncClient
    kube: KubeApi
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], float] = time.time
    # Authorize links share the flow store's Redis; None only in tests that do not use links.
    links: LinkStoreApi | None = None
    # Gateway views for starting flows; disabled (TTL 0) unless the settings enable it.
    gateways: GatewayCache = field(default_factory=GatewayCache)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.store.aclose()
        await self.kube.aclose()


def build_resources(settings: CallbackSettings) -> Resources:
    """The production clients; nothing connects until first used."""
    store = StateStore.from_url(
        settings.redis_url,
        timeout=settings.redis_timeout_seconds,
        key_prefix=settings.redis_key_prefix,
        ca_file=str(settings.redis_ca_file) if settings.redis_ca_file else None,
    )
    return Resources(
        store=store,
        keys=KeySource(settings.key_dir),
        http=build_client(timeout=settings.http_timeout_seconds),
        kube=Kube.from_env(settings.kubeconfig),
        gateways=GatewayCache(settings.gateway_cache_seconds),
        links=LinkStore(
            store.link,
            key_prefix=settings.redis_key_prefix,
            timeout=settings.redis_timeout_seconds,
        ),
    )
