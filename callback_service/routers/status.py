"""`GET /oauth/status/{namespace}/{name}`: what a user needs to know about a gateway, no secrets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from callback_service.dependencies import CallerDep, ResourcesDep, SettingsDep
from callback_service.gateways import kube_failure, load_gateway_client
from callback_service.pages import page
from mcpgw_core.kube import KubeError, core_path
from mcpgw_core.token_secrets import token_secret_name

router = APIRouter(tags=["status"])


@router.get("/oauth/status/{namespace}/{name}")
async def gateway_status(
    namespace: str,
    name: str,
    request: Request,
    user: CallerDep,
    settings: SettingsDep,
    res: ResourcesDep,
) -> Response:
    """The gateway's client and conditions, and whether the caller has tokens stored."""
    client = await load_gateway_client(res.kube, namespace, name)
    secret_name = token_secret_name(name, user)
    try:
        secret = await res.kube.get(core_path("secrets", namespace, secret_name))
    except KubeError as exc:
        raise kube_failure(exc, "reading the token Secret") from None
    authorized = secret is not None
    body: dict[str, Any] = {
        "gateway": client.identity,
        "user": user,
        "clientID": client.client_id,
        "issuer": client.issuer,
        "redirectURI": client.redirect_uri,
        "authorizeURL": f"{settings.public_url}/oauth/authorize/{namespace}/{name}",
        "authorized": authorized,
        "tokenSecret": secret_name if authorized else None,
        "conditions": [
            {"type": kind, "status": status, "reason": reason}
            for kind, status, reason in client.conditions
        ],
    }
    lines = [
        f"Client {client.client_id} at {client.issuer or 'an unnamed issuer'}.",
        f"User {user}: " + ("authorized." if authorized else "not authorized yet."),
        *(f"{kind}={status} ({reason})" for kind, status, reason in client.conditions),
    ]
    return page(request, 200, f"MCPGateway {client.identity}", lines, body)
