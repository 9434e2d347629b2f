"""One reconcile pass for an MCPGateway: gather, decide, write only what changed."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from mcpgw_core.api import (
    ClientStatus,
    ConditionStatus,
    ConditionType,
    DeletionPolicy,
    MCPGatewaySpec,
    MCPGatewayStatus,
    Reason,
    RegistrationMode,
)
from mcpgw_core.discovery import Discovery, MetadataCache
from mcpgw_core.errors import OAuthError
from mcpgw_core.kube import Kube, core_path, gateway_path
from mcpgw_core.registration_policy import choose_registration_mode, negotiate_auth_method
from mcpgw_operator import children, decide
from mcpgw_operator.conditions import format_time, transitions
from mcpgw_operator.deletion import FINALIZER, ensure_finalizer, finalize
from mcpgw_operator.events import EventSink
from mcpgw_operator.registrar import (
    ClientCredentials,
    Registrar,
    pre_registered,
    read_secret_key,
    requested_scopes,
)
from mcpgw_operator.settings import OperatorSettings

JSON = dict[str, Any]
ObserveAuthorization = Callable[[JSON, datetime], Awaitable["decide.AuthorizationView | None"]]
log = logging.getLogger(__name__)
OWNED_STATUS_KEYS = set(MCPGatewayStatus.model_fields) | {
    f.alias for f in MCPGatewayStatus.model_fields.values() if f.alias
}


class StageFailed(Exception):
    def __init__(self, stage: str, error: OAuthError) -> None:
        super().__init__(str(error))
        self.stage = stage
        self.error = error


@dataclass
class Reconciler:
    """Reconciles gateways one at a time each (a lock per gateway), many at once overall."""

    kube: Kube
    http: httpx.AsyncClient
    settings: OperatorSettings
    cache: MetadataCache
    events: EventSink
    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    # Passes running at once: enough to keep the API server and the ASes busy, few enough
    # that 1,000 gateways created together queue here instead of timing out in HTTP pools.
    passes: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(24))
    # Plugged in by the callback-service and token modules; None means "not known yet".
    callback_health: Callable[[], decide.CallbackHealth | None] = lambda: None
    observe_authorization: ObserveAuthorization | None = None

    @property
    def registrar(self) -> Registrar:
        return Registrar(self.kube, self.http, self.events)

    async def reconcile(self, body: JSON, now: datetime, *, trigger: str = "event") -> bool:
        """Run a pass if the trigger calls for one; True when it ran.

        `event`: a watch event; runs unless a retry is pending and not yet due (so our own
        status write after a failure does not start the next attempt early). `tick`: the
        scheduler; runs only when a pending retry is due. `resync`: always.
        """
        meta = body["metadata"]
        if trigger == "tick" and not _retry_due(body, now):
            return False
        async with self.locks[f"{meta['namespace']}/{meta['name']}"], self.passes:
            fresh = await self.kube.get(gateway_path(meta["namespace"], meta["name"]))
            if fresh is None:
                return False
            if trigger == "event" and not _due(fresh, now):
                return False
            if fresh["metadata"].get("deletionTimestamp"):
                if FINALIZER not in (fresh["metadata"].get("finalizers") or []):
                    return False
                await finalize(self, fresh, now)
            else:
                await self._pass(fresh, now)
            return True

    async def _pass(self, body: JSON, now: datetime) -> None:
        meta = body["metadata"]
        old_wire = {k: v for k, v in (body.get("status") or {}).items() if k in OWNED_STATUS_KEYS}
        old = MCPGatewayStatus.model_validate(old_wire)
        redirect_uri = self.settings.redirect_uri
        found: Discovery | None = None
        creds: ClientCredentials | None = None
        failure: StageFailed | None = None
        try:
            spec = MCPGatewaySpec.model_validate(body.get("spec") or {})
            found = await self._discover(spec, now)
            creds = await self._register(body, spec, found, redirect_uri, now)
            await self._ensure_consumer_secret(body, spec, found, creds, redirect_uri)
        except StageFailed as exc:
            failure = exc
        except ValidationError as exc:
            error = OAuthError(Reason.DISCOVERY_FAILED, f"invalid spec: {exc.errors()[0]['msg']}")
            failure = StageFailed(ConditionType.DISCOVERED, error)
        authorization = None
        if creds is not None and self.observe_authorization is not None:
            authorization = await self.observe_authorization(body, now)
        base_url = self.settings.callback_public_url.rstrip("/")
        observed = decide.Observed(
            generation=int(meta.get("generation", 0)),
            redirect_uri=redirect_uri,
            discovery=found,
            client=_client_status(creds, meta["name"]) if creds else None,
            failure=failure.error if failure else None,
            failed_stage=failure.stage if failure else None,
            registered_redirect_uris=creds.redirect_uris if creds else None,
            callback=self.callback_health(),
            authorization=authorization,
            authorize_url=f"{base_url}/oauth/authorize/{meta['namespace']}/{meta['name']}",
        )
        new = decide.desired_status(old, observed, now=now)
        new_wire = decide.status_wire(new)
        patch = decide.merge_patch(old_wire, new_wire)
        if patch:
            await self.kube.merge_patch(
                gateway_path(meta["namespace"], meta["name"], "status"), {"status": patch}
            )
        await self._announce(body, old, new)
        if failure is not None:
            log.info("gateway %s/%s: %s", meta["namespace"], meta["name"], failure.error, extra={})

    async def _discover(self, spec: MCPGatewaySpec, now: datetime) -> Discovery:
        try:
            return await self.cache.get_or_discover(
                self.http, resource_url=spec.url, issuer=spec.oauth.issuer, now=now.timestamp()
            )
        except OAuthError as exc:
            raise StageFailed(ConditionType.DISCOVERED, exc) from exc

    async def _register(
        self, body: JSON, spec: MCPGatewaySpec, found: Discovery, redirect_uri: str, now: datetime
    ) -> ClientCredentials:
        namespace = body["metadata"]["namespace"]
        reg = spec.oauth.registration
        try:
            mode = choose_registration_mode(
                reg.mode, reg.client_secret_ref is not None, found.authorization_server
            )
            if mode == RegistrationMode.PRE_REGISTERED:
                assert reg.client_secret_ref is not None
                auth = negotiate_auth_method(
                    found.authorization_server, reg.token_endpoint_auth_method
                )
                return await pre_registered(self.kube, namespace, reg.client_secret_ref, auth)
            if mode == RegistrationMode.CLIENT_ID_METADATA_DOCUMENT:
                raise OAuthError(
                    Reason.REGISTRATION_UNSUPPORTED,
                    "Client ID Metadata Documents are not supported by this operator version; "
                    "set registration.mode to Dynamic or PreRegistered",
                )
            iat = None
            if reg.initial_access_token_ref is not None:
                ref = reg.initial_access_token_ref
                iat = await read_secret_key(
                    self.kube, namespace, ref.name, ref.key, "initialAccessTokenRef",
                    Reason.INITIAL_ACCESS_TOKEN_INVALID,
                )  # fmt: skip
            if spec.deletion_policy == DeletionPolicy.DELETE:
                await ensure_finalizer(self.kube, body)
            return await self.registrar.ensure(body, spec, found, redirect_uri, iat, now)
        except OAuthError as exc:
            raise StageFailed(ConditionType.REGISTERED, exc) from exc

    async def _ensure_consumer_secret(
        self,
        body: JSON,
        spec: MCPGatewaySpec,
        found: Discovery,
        creds: ClientCredentials,
        redirect_uri: str,
    ) -> None:
        desired = children.consumer_secret(
            body,
            spec,
            {
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "issuer": found.issuer,
                "authorization_endpoint": found.authorization_endpoint,
                "token_endpoint": found.token_endpoint,
                "redirect_uri": redirect_uri,
                "token_endpoint_auth_method": creds.auth_method,
                "scope": " ".join(requested_scopes(spec, found)),
            },
        )
        namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
        actual = await self.kube.get(core_path("secrets", namespace, name))
        if actual is None:
            await self.kube.create(core_path("secrets", namespace), desired)
        elif children.secret_differs(actual, desired):
            fields = ("labels", "annotations")
            meta_patch = {k: desired["metadata"][k] for k in fields if k in desired["metadata"]}
            await self.kube.merge_patch(
                core_path("secrets", namespace, name),
                {"metadata": meta_patch, "data": _data_patch(actual, desired)},
            )

    async def _announce(self, body: JSON, old: MCPGatewayStatus, new: MCPGatewayStatus) -> None:
        flips = transitions(old.conditions, new.conditions)
        if not flips:
            return
        message = "; ".join(f"{t.type}={t.new_status.value} ({t.reason})" for t in flips)
        bad = any(t.new_status == ConditionStatus.FALSE for t in flips)
        reason = next(
            (t.reason for t in flips if t.new_status == ConditionStatus.FALSE), flips[-1].reason
        )
        await self.events.post(body, "Warning" if bad else "Normal", reason, message)


def _data_patch(actual: JSON, desired: JSON) -> JSON:
    current = actual.get("data") or {}
    patch: JSON = {k: None for k in current.keys() - desired["data"].keys()}
    patch.update({k: v for k, v in desired["data"].items() if current.get(k) != v})
    return patch


def _due(body: JSON, now: datetime) -> bool:
    """Whether a pass should run: spec changed, or no retry pending, or the retry is due."""
    status = body.get("status") or {}
    # Setting deletionTimestamp bumps the generation too; during deletion only the backoff of
    # failed RFC 7592 DELETEs counts, or each retry's own status write would start the next.
    deleting = bool(body["metadata"].get("deletionTimestamp"))
    if not deleting and status.get("observedGeneration") != body["metadata"].get("generation"):
        return True
    next_retry = (status.get("retry") or {}).get("nextRetryAt")
    return next_retry is None or next_retry <= format_time(now)


def _retry_due(body: JSON, now: datetime) -> bool:
    next_retry = ((body.get("status") or {}).get("retry") or {}).get("nextRetryAt")
    return next_retry is not None and next_retry <= format_time(now)


def _client_status(creds: ClientCredentials, gateway: str) -> ClientStatus:
    def when(ts: int | None) -> str | None:
        if not ts:
            return None
        return format_time(datetime.fromtimestamp(ts, UTC))

    return ClientStatus(
        client_id=creds.client_id,
        mode=creds.mode,
        secret_name=children.consumer_secret_name(gateway),
        issued_at=when(creds.issued_at),
        secret_expires_at=when(creds.secret_expires_at),
        fingerprint=creds.fingerprint,
        client_name=creds.client_name,
    )
