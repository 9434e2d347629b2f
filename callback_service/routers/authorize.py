"""`GET /oauth/authorize/{namespace}/{name}`: start a flow for the authenticated caller.

The caller is the user named by the trusted proxy, dev mode's user, or (with `?link=`) the
Kubernetes user a single-use authorize link was minted for (`routers.links`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from callback_service.dependencies import FlowCallerDep, ResourcesDep, SettingsDep
from callback_service.flows import start_flow
from callback_service.pages import SECURITY_HEADERS
from mcpgw_core.errors import OAuthError

router = APIRouter(tags=["authorize"])


@router.get("/oauth/authorize/{namespace}/{name}", status_code=302)
async def authorize(
    namespace: str,
    name: str,
    request: Request,
    user: FlowCallerDep,
    settings: SettingsDep,
    res: ResourcesDep,
) -> RedirectResponse:
    """Redirect to the gateway's authorization endpoint with PKCE and a browser-bound state."""
    try:
        started = await start_flow(
            res,
            settings,
            namespace=namespace,
            name=name,
            user=user,
            binding=request.cookies.get(settings.cookie_name),
        )
    except OAuthError as exc:
        res.metrics.authorize_rejections.labels(reason=exc.reason).inc()
        raise
    res.metrics.flows_started.inc()
    response = RedirectResponse(started.location, status_code=302, headers=SECURITY_HEADERS)
    response.set_cookie(
        settings.cookie_name,
        started.binding,
        # Outlives the state a little; it is re-sent (and kept) by every new flow.
        max_age=settings.state_ttl_seconds * 2,
        path="/oauth",
        secure=settings.secure_cookie,
        httponly=True,
        samesite="lax",
    )
    return response
