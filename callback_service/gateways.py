"""Reads an MCPGateway and the consumer Secret the operator wrote for it into one client view."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from callback_service.errors import ServiceError
from mcpgw_core.api import Reason, TokenEndpointAuthMethod
from mcpgw_core.kube import KubeError, core_path, gateway_path
from mcpgw_core.redact import cap, strip_control
from mcpgw_core.tokens import ClientCredentials

JSON = dict[str, Any]
# The operator's contract (mcpgw_operator.children): consumer Secret name and keys.
CONSUMER_SECRET_SUFFIX: Final = "-oauth-client"  # noqa: S105 - a name suffix
_REQUIRED_KEYS: Final = ("client_id", "authorization_endpoint", "token_endpoint", "redirect_uri")


class KubeApi(Protocol):
    """The part of `mcpgw_core.kube.Kube` this service uses (fakes implement it in unit tests)."""

    async def get(self, path: str) -> JSON | None: ...

    async def create(self, path: str, body: JSON) -> JSON: ...

    async def replace(self, path: str, body: JSON) -> JSON: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class GatewayClient:
    """Everything a flow needs about one gateway's OAuth client; the secret stays out of repr."""

    namespace: str
    name: str
    uid: str
    client_id: str
    issuer: str | None
    authorization_endpoint: str
    token_endpoint: str
    redirect_uri: str
    auth_method: TokenEndpointAuthMethod
    scope: str | None
    resource: str | None
    conditions: tuple[tuple[str, str, str], ...] = ()
    client_secret: str | None = field(default=None, repr=False)

    @property
    def identity(self) -> str:
        return f"{self.namespace}/{self.name}"

    def credentials(self) -> ClientCredentials:
        return ClientCredentials(self.client_id, self.client_secret, self.auth_method)


def kube_failure(exc: KubeError, what: str) -> ServiceError:
    """A Kubernetes API failure as a 503; the API's message names objects, never their data."""
    detail = cap(strip_control(exc.message or exc.reason), 160)
    return ServiceError(
        503, Reason.KUBERNETES_UNAVAILABLE, f"{what} failed (HTTP {exc.status}): {detail}"
    )


async def load_gateway(kube: KubeApi, namespace: str, name: str) -> JSON:
    """The MCPGateway object, or `ServiceError` 404."""
    try:
        gateway = await kube.get(gateway_path(namespace, name))
    except KubeError as exc:
        raise kube_failure(exc, "reading the MCPGateway") from None
    if gateway is None:
        raise ServiceError(404, Reason.GATEWAY_NOT_FOUND, f"no MCPGateway {namespace}/{name}")
    return gateway


async def load_gateway_client(kube: KubeApi, namespace: str, name: str) -> GatewayClient:
    """The gateway and its consumer Secret, or `ServiceError` 404/409/503."""
    gateway = await load_gateway(kube, namespace, name)
    try:
        secret = await kube.get(core_path("secrets", namespace, name + CONSUMER_SECRET_SUFFIX))
    except KubeError as exc:
        raise kube_failure(exc, "reading the gateway's client Secret") from None
    values = _decode(secret)
    missing = [key for key in _REQUIRED_KEYS if not values.get(key)]
    if secret is None or missing:
        detail = "does not exist yet" if secret is None else f"lacks {', '.join(missing)}"
        raise ServiceError(
            409,
            Reason.CLIENT_NOT_REGISTERED,
            f"the client Secret {name}{CONSUMER_SECRET_SUFFIX} {detail}",
        )
    spec = gateway.get("spec") or {}
    oauth = spec.get("oauth") or {}
    scopes = oauth.get("scopes") or []
    try:
        method = TokenEndpointAuthMethod(
            values.get("token_endpoint_auth_method") or TokenEndpointAuthMethod.CLIENT_SECRET_BASIC
        )
    except ValueError:
        raise ServiceError(
            409, Reason.CLIENT_NOT_REGISTERED, "the client Secret names an unknown auth method"
        ) from None
    return GatewayClient(
        namespace=namespace,
        name=name,
        uid=str(gateway.get("metadata", {}).get("uid", "")),
        client_id=values["client_id"],
        client_secret=values.get("client_secret") or None,
        issuer=values.get("issuer") or None,
        authorization_endpoint=values["authorization_endpoint"],
        token_endpoint=values["token_endpoint"],
        redirect_uri=values["redirect_uri"],
        auth_method=method,
        scope=values.get("scope") or (" ".join(scopes) if scopes else None),
        resource=oauth.get("resource") or spec.get("url") or None,
        conditions=_conditions(gateway),
    )


def _decode(secret: JSON | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, raw in ((secret or {}).get("data") or {}).items():
        try:
            values[key] = base64.b64decode(raw, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError, TypeError):
            continue
    return values


def _conditions(gateway: JSON) -> tuple[tuple[str, str, str], ...]:
    found = (gateway.get("status") or {}).get("conditions") or []
    return tuple(
        (str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")))
        for c in found
        if isinstance(c, dict)
    )
