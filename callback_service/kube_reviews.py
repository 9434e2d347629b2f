"""Kubernetes says who a bearer token belongs to (TokenReview) and what they may do (SAR).

The callback's own ServiceAccount makes both reviews, so it needs `create` on `tokenreviews`
and `subjectaccessreviews` (the chart's callback RBAC). The token under review never reaches a
log line or an error message: API messages are redacted against it before they are shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from callback_service.errors import ServiceError
from callback_service.gateways import KubeApi
from mcpgw_core.api import GROUP, PLURAL, Reason
from mcpgw_core.kube import KubeError
from mcpgw_core.redact import redact_text

TOKEN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105 - a path
SUBJECT_ACCESS_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
# A JWT or a static token; anything longer or with spaces is not a Kubernetes bearer token.
MAX_TOKEN_LENGTH: Final = 16384
_TOKEN_RE: Final = re.compile(r"[\x21-\x7e]+")
_BEARER_RE: Final = re.compile(r"bearer\s+(\S+)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ReviewedUser:
    """The identity the API server's authenticators gave a token."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header, or `ServiceError` 401."""
    found = _BEARER_RE.fullmatch(authorization or "")
    token = found.group(1) if found else ""
    if not token:
        raise ServiceError(
            401,
            Reason.UNAUTHENTICATED,
            "send your Kubernetes credentials as 'Authorization: Bearer <token>'",
        )
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_RE.fullmatch(token):
        raise ServiceError(401, Reason.BEARER_TOKEN_REJECTED, "the bearer token is malformed")
    return token


async def review_token(kube: KubeApi, token: str) -> ReviewedUser:
    """Ask the API server whose token this is; 401 when it authenticates no one."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }
    result = await _review(kube, TOKEN_REVIEWS, body, "the TokenReview", token)
    status = result.get("status") or {}
    user = status.get("user") or {}
    username = str(user.get("username") or "")
    if not status.get("authenticated") or not username:
        # The API server's own `error` explains (expired, wrong issuer...) and never quotes
        # the token; it is redacted anyway.
        why = redact_text(str(status.get("error") or "not authenticated"), secrets=(token,))
        raise ServiceError(
            401,
            Reason.BEARER_TOKEN_REJECTED,
            f"the Kubernetes API did not accept the bearer token: {why}",
        )
    extra = user.get("extra") or {}
    return ReviewedUser(
        username=username,
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra={str(k): [str(v) for v in vs] for k, vs in extra.items() if isinstance(vs, list)},
    )


async def may_update_gateway(kube: KubeApi, user: ReviewedUser, namespace: str, name: str) -> None:
    """Return when RBAC lets `user` update this MCPGateway; `ServiceError` 403 otherwise."""
    spec: dict[str, Any] = {
        "user": user.username,
        "groups": list(user.groups),
        "resourceAttributes": {
            "namespace": namespace,
            "verb": "update",
            "group": GROUP,
            "resource": PLURAL,
            "name": name,
        },
    }
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = user.extra
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": spec,
    }
    result = await _review(kube, SUBJECT_ACCESS_REVIEWS, body, "the SubjectAccessReview", None)
    status = result.get("status") or {}
    if status.get("allowed") is True and not status.get("denied"):
        return
    raise ServiceError(
        403,
        Reason.FORBIDDEN,
        f"{user.username} is not allowed to update mcpgateway {namespace}/{name}",
    )


async def _review(
    kube: KubeApi, path: str, body: dict[str, Any], what: str, token: str | None
) -> dict[str, Any]:
    try:
        return await kube.create(path, body)
    except KubeError as exc:
        detail = redact_text(exc.message or exc.reason, secrets=(token,), limit=160)
        raise ServiceError(
            503,
            Reason.KUBERNETES_UNAVAILABLE,
            f"{what} failed (HTTP {exc.status}): {detail}",
        ) from None
