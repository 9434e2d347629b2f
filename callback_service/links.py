"""Authorize links for Kubernetes users: minted after TokenReview and SAR, then used once.

Minting (`POST /oauth/links/{namespace}/{name}`) proves two things with the caller's own bearer
token: who they are (TokenReview) and that RBAC lets them update that MCPGateway
(SubjectAccessReview, verb `update`). The link then stands in for that proof in a browser, where
no bearer token exists: `GET /oauth/authorize/{namespace}/{name}?link=<token>` takes it out of
Redis atomically and starts the flow for the reviewed user. The link is consumed before anything
else is checked, so a link shown on the wrong gateway or after its deadline is burned, not
retried. Framework-free: the routers turn results and `ServiceError`s into HTTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from callback_service.errors import ServiceError
from callback_service.gateways import load_gateway
from callback_service.kube_reviews import may_update_gateway, review_token
from callback_service.link_store import LinkGrant, LinkStoreApi, link_rejected, new_link_token
from callback_service.resources import Resources
from callback_service.settings import CallbackSettings
from mcpgw_core.api import Reason
from mcpgw_core.state import is_gateway_identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MintedLink:
    """A fresh link and what it is good for. `authorize_url` is a credential: never log it."""

    authorize_url: str
    expires_at: datetime
    user: str
    gateway: str


def link_store(res: Resources) -> LinkStoreApi:
    if res.links is None:
        raise ServiceError(
            503, Reason.STATE_STORE_UNREACHABLE, "this replica has no store for authorize links"
        )
    return res.links


def gateway_identity(namespace: str, name: str) -> str:
    gateway = f"{namespace}/{name}"
    if not is_gateway_identity(gateway):
        raise ServiceError(404, Reason.GATEWAY_NOT_FOUND, "not a valid MCPGateway namespace/name")
    return gateway


async def mint_link(
    res: Resources, settings: CallbackSettings, *, token: str, namespace: str, name: str
) -> MintedLink:
    """Review `token`, check RBAC, store a single-use grant and return the link to it."""
    gateway = gateway_identity(namespace, name)
    user = await review_token(res.kube, token)
    await may_update_gateway(res.kube, user, namespace, name)
    # Only after RBAC said yes, so the endpoint does not tell strangers which gateways exist.
    await load_gateway(res.kube, namespace, name)
    now = res.clock()
    expires_at = now + settings.link_ttl_seconds
    link = new_link_token()
    grant = LinkGrant(user=user.username, gateway=gateway, expires_at=expires_at)
    await link_store(res).put(link, grant, settings.link_ttl_seconds)
    res.metrics.links_minted.inc()
    log.info("authorize link minted for user %s on gateway %s, valid %d s", user.username,
             gateway, settings.link_ttl_seconds)  # fmt: skip
    url = (
        f"{settings.public_url}/oauth/authorize/{quote(namespace, safe='')}/"
        f"{quote(name, safe='')}?link={link}"
    )
    return MintedLink(
        authorize_url=url,
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        user=user.username,
        gateway=gateway,
    )


async def redeem_link(res: Resources, link: str, *, namespace: str, name: str) -> str:
    """Consume `link` for this gateway and return the user it was minted for; 401 otherwise."""
    gateway = f"{namespace}/{name}"
    grant = await link_store(res).take(link)
    if grant.gateway != gateway:
        raise link_rejected(
            Reason.LINK_GATEWAY_MISMATCH,
            "the authorize link was minted for another gateway; it is now used up",
        )
    if res.clock() > grant.expires_at:
        raise link_rejected(Reason.LINK_EXPIRED, "the authorize link expired; mint a new one")
    log.info("authorize link redeemed by user %s on gateway %s", grant.user, gateway)
    return grant.user
