"""The operator's long-lived clients, built at start-up and closed at clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import httpx
import kopf

from mcpgw_core.discovery import MetadataCache
from mcpgw_core.http import build_client
from mcpgw_core.kube import Kube
from mcpgw_operator import authorization
from mcpgw_operator.callback_infra import CallbackInfra
from mcpgw_operator.events import EventSink
from mcpgw_operator.reconcile import Reconciler
from mcpgw_operator.refresher import Refresher
from mcpgw_operator.scheduler import Scheduler
from mcpgw_operator.settings import OperatorSettings, get_settings


@dataclass
class Runtime:
    settings: OperatorSettings
    kube: Kube
    http: httpx.AsyncClient
    events: EventSink
    reconciler: Reconciler
    scheduler: Scheduler
    loop: asyncio.Task[None] | None = None
    refresher: Refresher | None = None
    refresh_loop: asyncio.Task[None] | None = None
    callback_loop: asyncio.Task[None] | None = None


_runtime: Runtime | None = None


def get() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator runtime is not started")
    return _runtime


@kopf.on.startup()
async def start(**_: Any) -> None:
    global _runtime
    settings = get_settings()
    kube = Kube.from_env()
    http = build_client(timeout=settings.http_timeout_seconds)
    events = EventSink(kube)
    cache = MetadataCache(ttl=settings.discovery_cache_seconds)
    reconciler = Reconciler(kube, http, settings, cache, events)
    scheduler = Scheduler(settings.timer_seconds, settings.resync_seconds)
    _runtime = Runtime(settings, kube, http, events, reconciler, scheduler)
    # Imported here: the handlers module imports this one for get().
    from mcpgw_operator.handlers import run_pass

    _runtime.loop = asyncio.create_task(scheduler.run(run_pass), name="mcpgw-scheduler")
    # Users' tokens: Authorized from their Secrets, refreshes ahead of expiry (refresher.py).
    reconciler.observe_authorization = functools.partial(authorization.observe, kube)
    _runtime.refresher = Refresher(kube, http, events, settings)
    _runtime.refresh_loop = asyncio.create_task(
        _runtime.refresher.run(), name="mcpgw-token-refresher"
    )
    infra = CallbackInfra(kube, http, settings, on_change=scheduler.all_soon)
    reconciler.callback_health = infra.health
    _runtime.callback_loop = asyncio.create_task(infra.run(), name="mcpgw-callback-infra")


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    global _runtime
    if _runtime is not None:
        if _runtime.loop is not None:
            _runtime.loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await _runtime.loop
        if _runtime.refresh_loop is not None:
            _runtime.refresh_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await _runtime.refresh_loop
        if _runtime.callback_loop is not None:
            _runtime.callback_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await _runtime.callback_loop
        await _runtime.http.aclose()
        await _runtime.kube.aclose()
        _runtime = None
