"""FastAPI dependencies as `Annotated` aliases: settings, the app's resources, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from callback_service.caller import identify_caller
from callback_service.errors import ServiceError
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
