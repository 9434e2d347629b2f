"""FastAPI dependencies as `Annotated` aliases: settings, the app's resources, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from callback_service.caller import identify_caller
from callback_service.errors import ServiceError
from callback_service.links import redeem_link
from callback_service.resources import Resources
from callback_service.settings import CallbackSettings, get_settings

SettingsDep = Annotated[CallbackSettings, Depends(get_settings)]


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_caller(request: Request, settings: SettingsDep, resources: ResourcesDep) -> str:
    """The authenticated user; a refusal is counted and answered by the error handler."""
    peer = request.client.host if request.client else None
    try:
        return identify_caller(settings, peer, request.headers)
    except ServiceError as exc:
        resources.metrics.authorize_rejections.labels(reason=exc.reason).inc()
        raise


CallerDep = Annotated[str, Depends(get_caller)]


async def get_flow_caller(
    namespace: str,
    name: str,
    request: Request,
    settings: SettingsDep,
    resources: ResourcesDep,
    link: Annotated[str | None, Query(description="A single-use authorize link token.")] = None,
) -> str:
    """Who starts this flow: the user an authorize link was minted for, else `get_caller`'s.

    A link is its own credential (it stands for a TokenReview and an RBAC check done when it was
    minted), so it is accepted from any address; it is consumed here, before the flow starts.
    """
    if link is None:
        return get_caller(request, settings, resources)
    try:
        return await redeem_link(resources, link, namespace=namespace, name=name)
    except ServiceError as exc:
        resources.metrics.authorize_rejections.labels(reason=exc.reason).inc()
        raise


FlowCallerDep = Annotated[str, Depends(get_flow_caller)]
