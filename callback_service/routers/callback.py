"""`GET /oauth/callback`: finish a flow another replica may have started, store the tokens."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from callback_service.dependencies import ResourcesDep, SettingsDep
from callback_service.errors import ServiceError, service_error
from callback_service.flows import CallbackParams, finish_flow
from callback_service.pages import error_page, page
from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.errors import OAuthError
from mcpgw_core.state import StateRejected

log = logging.getLogger(__name__)
router = APIRouter(tags=["callback"])

# No length caps here: the server's request-line limit bounds them, and an oversized state must
# be refused by the state parser with its own reason rather than by generic validation.
_Param = Annotated[str | None, Query()]
_STATE_REASONS = frozenset(
    value for key, value in vars(StateRejection).items() if not key.startswith("_")
)


@router.get("/oauth/callback")
async def callback(
    request: Request,
    settings: SettingsDep,
    res: ResourcesDep,
    state: _Param = None,
    code: _Param = None,
    error: _Param = None,
    error_description: _Param = None,
    iss: _Param = None,
) -> Response:
    """The redirect URI every gateway registers; the gateway comes from the signed state."""
    params = CallbackParams(state, code, error, error_description, iss)
    return await _finish(request, settings, res, params, expected_gateway=None)


@router.get("/oauth/callback/{namespace}/{name}")
async def gateway_callback(
    namespace: str,
    name: str,
    request: Request,
    settings: SettingsDep,
    res: ResourcesDep,
    state: _Param = None,
    code: _Param = None,
    error: _Param = None,
    error_description: _Param = None,
    iss: _Param = None,
) -> Response:
    """A per-gateway redirect URI: a state minted for another gateway is refused outright."""
    params = CallbackParams(state, code, error, error_description, iss)
    return await _finish(request, settings, res, params, expected_gateway=f"{namespace}/{name}")


async def _finish(
    request: Request,
    settings: SettingsDep,
    res: ResourcesDep,
    params: CallbackParams,
    *,
    expected_gateway: str | None,
) -> Response:
    binding = request.cookies.get(settings.cookie_name)
    try:
        done = await finish_flow(
            res, settings, params, binding=binding, expected_gateway=expected_gateway
        )
    except OAuthError as exc:
        failure = service_error(exc)
        _count_failure(res, failure, exc)
        return error_page(request, failure)
    res.metrics.flows_completed.labels(result=Reason.AUTHORIZED).inc()
    expires = done.expires_at.isoformat() if done.expires_at else None
    lines = [
        f"The tokens for gateway {done.gateway} are stored for user {done.user}.",
        "You can close this window; the gateway will report Authorized=True shortly.",
    ]
    if expires:
        lines.append(f"The access token expires at {expires}; it is refreshed automatically.")
    body = {
        "status": "Authorized",
        "gateway": done.gateway,
        "user": done.user,
        "secret": done.secret_name,
        "expiresAt": expires,
    }
    return page(request, 200, "Authorization complete", lines, body)


def _count_failure(res: ResourcesDep, failure: ServiceError, exc: OAuthError) -> None:
    res.metrics.flows_completed.labels(result=failure.reason).inc()
    if isinstance(exc, StateRejected) or failure.reason in _STATE_REASONS:
        res.metrics.state_rejections.labels(reason=failure.reason).inc()
    level = logging.ERROR if failure.status_code >= 500 else logging.WARNING
    # The guide tells people to grep for these words; the reason makes the line precise.
    log.log(level, "OAuth callback failed: %s [%s] %s", failure.headline, failure.reason,
            failure.message)  # fmt: skip
