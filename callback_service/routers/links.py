"""`POST /oauth/links/{namespace}/{name}`: mint a single-use authorize link for a Kubernetes user.

Request: `Authorization: Bearer <Kubernetes token>` (what `kubectl mcpgw authorize-link` sends),
no body. The token must authenticate with TokenReview, and SubjectAccessReview must allow its
user to `update` that MCPGateway. Answer 201:
`{"authorizeURL": "<public URL>/oauth/authorize/<ns>/<name>?link=<token>",
"expiresAt": "<RFC 3339>", "user": "<reviewed user>", "gateway": "<ns>/<name>"}`;
401 (`Unauthenticated`, `BearerTokenRejected`), 403 (`Forbidden`), 404 (`GatewayNotFound`), 503.
Open the link in a browser once, before `expiresAt`; it starts the flow as that user.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from callback_service.dependencies import ResourcesDep, SettingsDep
from callback_service.errors import service_error
from callback_service.kube_reviews import bearer_token
from callback_service.links import mint_link
from callback_service.pages import SECURITY_HEADERS
from mcpgw_core.errors import OAuthError

log = logging.getLogger(__name__)
router = APIRouter(tags=["links"])


@router.post("/oauth/links/{namespace}/{name}", status_code=201)
async def create_link(
    namespace: str,
    name: str,
    settings: SettingsDep,
    res: ResourcesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Authenticate and authorize the bearer token's user, then answer with a fresh link."""
    try:
        token = bearer_token(authorization)
        minted = await mint_link(res, settings, token=token, namespace=namespace, name=name)
    except OAuthError as exc:
        failure = service_error(exc)
        res.metrics.link_rejections.labels(reason=failure.reason).inc()
        level = logging.ERROR if failure.status_code >= 500 else logging.WARNING
        log.log(level, "authorize link refused: [%s] %s", failure.reason, failure.message)
        # A programs' endpoint: errors are JSON whatever the Accept header says.
        headers = {"Retry-After": "30"} if failure.status_code == 503 else {}
        return JSONResponse(
            failure.body(), status_code=failure.status_code, headers={**SECURITY_HEADERS, **headers}
        )
    body = {
        "authorizeURL": minted.authorize_url,
        "expiresAt": minted.expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "user": minted.user,
        "gateway": minted.gateway,
    }
    # The link is a credential: no caching anywhere on the way back.
    return JSONResponse(body, status_code=201, headers=SECURITY_HEADERS)
