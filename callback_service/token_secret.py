"""The token Secret per (gateway, user): its name, its manifest, reading it back, writing it.

Contract for the operator (which lists these Secrets to derive `Authorized` and refreshes them):
labels `mcpgw.dev/gateway=<gateway>` and `mcpgw.dev/role=token`; annotation `mcpgw.dev/user`;
data keys `access_token`, `token_type`, `refresh_token` and `id_token` (when issued), `scope`
(when known), `expires_at` and `obtained_at` (RFC 3339). Everything except the Kubernetes write
is pure, so the operator can reuse the builders.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any, Final

from callback_service.errors import ServiceError
from callback_service.gateways import KubeApi, kube_failure
from mcpgw_core.api import GROUP, KIND, VERSION, Reason
from mcpgw_core.kube import KubeError, core_path
from mcpgw_core.tokens import TokenSet

JSON = dict[str, Any]
GATEWAY_LABEL: Final = f"{GROUP}/gateway"
ROLE_LABEL: Final = f"{GROUP}/role"
TOKEN_ROLE: Final = "token"  # noqa: S105 - a label value, not a credential
USER_ANNOTATION: Final = f"{GROUP}/user"
_NAME_INFIX: Final = "-oauth-token-"
_MAX_NAME: Final = 253


def token_secret_name(gateway: str, user: str) -> str:
    """Deterministic, so a second authorization by the same user replaces the first."""
    suffix = _NAME_INFIX + hashlib.sha256(user.encode("utf-8")).hexdigest()[:10]
    # A DNS subdomain may not end in '-' or '.', which a cut gateway name could.
    return gateway[: _MAX_NAME - len(suffix)].rstrip("-.") + suffix


def token_secret(
    *, namespace: str, gateway: str, gateway_uid: str, user: str, tokens: TokenSet
) -> JSON:
    """The Secret manifest holding `tokens`, owned by the gateway so it goes when it goes."""
    values = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token,
        "scope": tokens.scope,
        "expires_at": _rfc3339(tokens.expires_at),
        "obtained_at": _rfc3339(tokens.obtained_at),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": token_secret_name(gateway, user),
            "namespace": namespace,
            "labels": {
                GATEWAY_LABEL: gateway,
                ROLE_LABEL: TOKEN_ROLE,
                "app.kubernetes.io/managed-by": "mcpgw-callback",
            },
            "annotations": {USER_ANNOTATION: user},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": gateway,
                    "uid": gateway_uid,
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {
            key: base64.b64encode(value.encode("utf-8")).decode("ascii")
            for key, value in values.items()
            if value
        },
    }


def read_token_set(secret: JSON) -> TokenSet:
    """Parse a token Secret back into a `TokenSet` (raises pydantic's ValidationError)."""
    data = {
        key: base64.b64decode(value).decode("utf-8")
        for key, value in (secret.get("data") or {}).items()
    }
    return TokenSet.model_validate(
        {
            key: data.get(key)
            for key in (
                "access_token",
                "token_type",
                "refresh_token",
                "id_token",
                "scope",
                "expires_at",
                "obtained_at",
            )
            if data.get(key)
        }
    )


async def store_tokens(kube: KubeApi, manifest: JSON) -> str:
    """Create the Secret, or replace the one a previous authorization left; return its name."""
    meta = manifest["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    try:
        try:
            await kube.create(core_path("secrets", namespace), manifest)
            return str(name)
        except KubeError as exc:
            if not exc.conflict:
                raise
        existing = await kube.get(core_path("secrets", namespace, name))
        if existing is None:
            await kube.create(core_path("secrets", namespace), manifest)
            return str(name)
        replacement = {
            **manifest,
            "metadata": {**meta, "resourceVersion": existing["metadata"]["resourceVersion"]},
        }
        await kube.replace(core_path("secrets", namespace, name), replacement)
    except KubeError as exc:
        failure = kube_failure(exc, "writing the token Secret")
        raise ServiceError(503, Reason.TOKEN_STORE_FAILED, failure.message) from None
    return str(name)


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
