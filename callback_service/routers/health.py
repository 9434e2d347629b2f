"""Probes and metrics: `/healthz` (process alive), `/readyz` (Redis and keys), `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callback_service.dependencies import ResourcesDep
from mcpgw_core.keyring import KeyRingError
from mcpgw_core.state_store import StateStoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the event loop answers. Dependencies are readiness's business."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(res: ResourcesDep) -> JSONResponse:
    """Ready when Redis answers and a key ring is loaded; else 503 with every reason."""
    problems: list[dict[str, str]] = []
    try:
        await res.store.ping()
    except StateStoreUnavailable as exc:
        problems.append({"reason": exc.reason, "message": exc.message})
    try:
        ring = res.keys.current()
        kids: list[str] = list(ring.kids)
    except KeyRingError as exc:
        kids = []
        problems.append({"reason": exc.reason, "message": exc.message})
    body: dict[str, object] = {"status": "unready" if problems else "ready", "keyIDs": kids}
    if problems:
        body["problems"] = problems
    if res.keys.last_error and not problems:
        body["warning"] = f"using the previous keys: {res.keys.last_error}"
    return JSONResponse(body, status_code=503 if problems else 200)


@router.get("/metrics")
async def metrics(res: ResourcesDep) -> Response:
    return Response(generate_latest(res.metrics.registry), media_type=CONTENT_TYPE_LATEST)
