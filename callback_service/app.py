"""The app factory: routers, error handling, latency metrics, and the lifespan building clients."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from callback_service.errors import service_error
from callback_service.pages import error_page
from callback_service.resources import Resources, build_resources
from callback_service.routers import authorize, callback, health, links, status
from callback_service.settings import CallbackSettings, get_settings
from mcpgw_core.errors import OAuthError

log = logging.getLogger(__name__)

ResourcesFactory = Callable[[CallbackSettings], Resources]


def create_app(
    settings: CallbackSettings | None = None,
    *,
    resources_factory: ResourcesFactory = build_resources,
) -> FastAPI:
    """Build the service; `settings` and `resources_factory` let tests replace the environment."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        effective = settings or get_settings()
        resources = resources_factory(effective)
        app.state.resources = resources
        try:
            # Load the keys now so a broken mount shows in the log at start, not at first use;
            # the service still starts and reports itself unready until the keys appear.
            resources.keys.current()
        except OAuthError as exc:
            log.error("state keys not loaded: %s", exc.message)
        log.info(
            "callback service up: redirect URI %s, auth mode %s, state TTL %d s",
            effective.redirect_uri,
            effective.auth_mode.value,
            effective.state_ttl_seconds,
        )
        try:
            yield
        finally:
            await resources.aclose()

    app = FastAPI(
        title="mcpgw callback service",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    for module in (authorize, links, callback, status, health):
        app.include_router(module.router)
    app.add_exception_handler(OAuthError, _oauth_error)  # type: ignore[arg-type]
    app.middleware("http")(_timed)
    return app


async def _oauth_error(request: Request, exc: OAuthError) -> Response:
    failure = service_error(exc)
    level = logging.ERROR if failure.status_code >= 500 else logging.WARNING
    log.log(level, "%s %s refused: [%s] %s", request.method, request.url.path, failure.reason,
            failure.message)  # fmt: skip
    return error_page(request, failure)


async def _timed(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    # The template, not the path: one series per route, not per gateway.
    label = getattr(route, "path", "unmatched")
    resources: Resources | None = getattr(request.app.state, "resources", None)
    if resources is not None:
        resources.metrics.request_duration.labels(route=label).observe(
            time.perf_counter() - started
        )
    return response
