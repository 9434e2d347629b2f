"""Refreshes users' access tokens ahead of expiry, one refresh per token set at a time.

Serialized three ways, because an AS that rotates refresh tokens revokes the whole grant when
an old one is presented twice: an asyncio.Lock per Secret in this process; a lease annotation
claimed with the Secret's resourceVersion before the AS is called, so a second operator
process (a rollout overlap) skips; and a re-read after taking both, so a trigger that raced a
finished refresh finds fresh tokens and does nothing. The result is written with the
resourceVersion too: a fresh authorization the callback service stored meanwhile wins.
Timing lives here (one loop over due times fed by watch events) rather than in the gateway
scheduler, whose keys are gateways and whose passes should not wait on token endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mcpgw_core.api import Reason, TokenEndpointAuthMethod
from mcpgw_core.kube import Kube, KubeError, core_path, gateway_path
from mcpgw_core.token_secrets import (
    REFRESH_ERROR_ANNOTATION,
    REFRESH_LEASE_ANNOTATION,
    REFRESH_REQUESTED_ANNOTATION,
    TOKEN_KEYS,
    token_data,
)
from mcpgw_core.tokens import ClientCredentials, TokenEndpointError, TokenSet, refresh
from mcpgw_operator import children
from mcpgw_operator.events import EventSink
from mcpgw_operator.refresh_plan import (
    Action,
    TokenSecretView,
    backoff,
    data_patch,
    lease_value,
    plan,
    read_view,
    same_grant,
)
from mcpgw_operator.settings import OperatorSettings

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace, token Secret name)
log = logging.getLogger(__name__)
_CAS_ATTEMPTS = 3


class RefreshPostponed(Exception):
    """Something the refresh needs is missing or unreachable; try again after a backoff."""


@dataclass
class Refresher:
    kube: Kube
    http: httpx.AsyncClient
    events: EventSink
    settings: OperatorSettings
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    )
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    locks: defaultdict[Key, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    due: dict[Key, datetime] = field(default_factory=dict)
    failures: dict[Key, int] = field(default_factory=dict)

    # --- Triggers -------------------------------------------------------------------------

    async def saw(self, secret: JSON) -> None:
        """A watch event showed this token Secret: refresh now if it calls for it, else schedule."""
        view = read_view(secret)
        now = self.clock()
        retry_at = self.due.get(view.key) if view.key in self.failures else None
        if retry_at is not None and retry_at > now:
            return  # backing off after an ambiguous failure; our own writes must not end it
        decision = plan(view, now, margin=self.settings.refresh_before_seconds, holder=self.holder)
        if decision.action is Action.WAIT:
            self._schedule(view.key, decision.next_at)
            return
        await self.refresh(view.key)

    def forget(self, key: Key) -> None:
        self.due.pop(key, None)
        self.failures.pop(key, None)
        lock = self.locks.get(key)
        if lock is not None and not lock.locked():
            del self.locks[key]

    async def run(self) -> None:
        """Forever: every tick, refresh the token Secrets whose time has come."""
        while True:
            await asyncio.sleep(self.settings.timer_seconds)
            now = self.clock()
            keys = [key for key, at in self.due.items() if at <= now]
            for key in keys:
                self.due.pop(key, None)
            if keys:
                await asyncio.gather(*(self.refresh(key) for key in keys))

    # --- One refresh ----------------------------------------------------------------------

    async def refresh(self, key: Key) -> None:
        """Refresh one token Secret if (re-read under the lock) it still needs it."""
        async with self.locks[key]:
            try:
                await self._refresh_locked(key)
            except RefreshPostponed as exc:
                self._postpone(key, str(exc))
            except KubeError as exc:
                self._postpone(key, f"Kubernetes API error {exc.status} {exc.reason}")

    async def _refresh_locked(self, key: Key) -> None:
        claimed = await self._claim(key)
        if claimed is None:
            return
        secret, view = claimed
        assert view.tokens is not None
        gateway = await self.kube.get(gateway_path(view.namespace, view.gateway))
        if gateway is None:
            raise RefreshPostponed(f"gateway {view.gateway} is not found")
        token_endpoint, credentials = await self._client(view.namespace, view.gateway)
        try:
            fresh = await refresh(
                self.http,
                token_endpoint=token_endpoint,
                current=view.tokens,
                credentials=credentials,
                now=self.clock(),
                resource=_resource(gateway),
                time_limit=self.settings.http_timeout_seconds,
            )
        except TokenEndpointError as exc:
            if not exc.definite:
                # The AS may or may not have rotated the refresh token: change nothing, retry.
                raise RefreshPostponed(exc.message) from None
            await self._record_failure(secret, view, exc, gateway)
            return
        written = await self._write(
            secret,
            view.tokens,
            {
                "data": data_patch(secret, token_data(fresh), TOKEN_KEYS),
                "annotations": _clear(REFRESH_ERROR_ANNOTATION),
            },
        )
        self.failures.pop(key, None)
        if written is not None:
            log.info("refreshed the tokens in Secret %s/%s (user %s)", *key, view.user)
            self._schedule_from(written)

    async def _claim(self, key: Key) -> tuple[JSON, TokenSecretView] | None:
        """Re-read the Secret and take the lease, or find out there is nothing to do."""
        path = core_path("secrets", key[0], key[1])
        for _ in range(_CAS_ATTEMPTS):
            secret = await self.kube.get(path)
            if secret is None:
                self.forget(key)
                return None
            view = read_view(secret)
            now = self.clock()
            decision = plan(
                view, now, margin=self.settings.refresh_before_seconds, holder=self.holder
            )
            try:
                if decision.action is Action.WAIT:
                    if decision.why == "leased":
                        log.info("Secret %s/%s: another operator process is refreshing it", *key)
                    self._schedule(key, decision.next_at)
                    return None
                if decision.action is Action.CLEAR_REQUEST:
                    log.info("Secret %s/%s: refresh requested but %s", *key, decision.why)
                    await self._patch(path, view.resource_version, {"annotations": _clear()})
                    return None
                until = now + timedelta(seconds=self.settings.refresh_lease_seconds)
                lease = {REFRESH_LEASE_ANNOTATION: lease_value(self.holder, until)}
                claimed = await self._patch(path, view.resource_version, {"annotations": lease})
                return claimed, view
            except KubeError as exc:
                if not exc.conflict:
                    raise
        raise RefreshPostponed("the token Secret kept changing")

    async def _client(self, namespace: str, gateway: str) -> tuple[str, ClientCredentials]:
        secret = await self.kube.get(
            core_path("secrets", namespace, children.consumer_secret_name(gateway))
        )
        values = children.decode_data(secret)
        if not values.get("client_id") or not values.get("token_endpoint"):
            raise RefreshPostponed(f"the client Secret of gateway {gateway} is not ready")
        try:
            method = TokenEndpointAuthMethod(
                values.get("token_endpoint_auth_method")
                or TokenEndpointAuthMethod.CLIENT_SECRET_BASIC
            )
        except ValueError:
            raise RefreshPostponed("the client Secret names an unknown auth method") from None
        credentials = ClientCredentials(
            values["client_id"], values.get("client_secret") or None, method
        )
        return values["token_endpoint"], credentials

    async def _record_failure(
        self, secret: JSON, view: TokenSecretView, exc: TokenEndpointError, gateway: JSON
    ) -> None:
        """A definite refusal: mark the Secret (Authorized turns False) and keep the tokens."""
        code = exc.error or (f"HTTP {exc.status_code}" if exc.status_code else "refused")
        written = await self._write(
            secret, view.tokens, {"annotations": {**_clear(), REFRESH_ERROR_ANNOTATION: code}}
        )
        self.failures.pop(view.key, None)
        if written is None:
            return
        log.warning("Secret %s/%s: refresh refused: %s", *view.key, exc.message)
        await self.events.warn(
            gateway,
            Reason.REFRESH_FAILED,
            f"Refreshing the tokens of user {view.user} (Secret {view.name}) failed: "
            f"{exc.message}; the user must authorize again",
        )

    async def _write(self, secret: JSON, used: TokenSet | None, patch: JSON) -> JSON | None:
        """Apply `patch` (data, annotations; the lease and any request are always cleared) with
        the resourceVersion; None when another grant was stored meanwhile (it wins)."""
        meta = secret["metadata"]
        path = core_path("secrets", meta["namespace"], meta["name"])
        version = str(meta["resourceVersion"])
        for _ in range(_CAS_ATTEMPTS):
            try:
                return await self._patch(path, version, patch)
            except KubeError as exc:
                if not exc.conflict:
                    raise
            current = await self.kube.get(path)
            if current is None or not same_grant(used, read_view(current).tokens):
                log.info("Secret %s/%s: a new authorization replaced the refreshed grant",
                         meta["namespace"], meta["name"])  # fmt: skip
                return None
            # Only annotations changed (e.g. another refresh request, which this one answers).
            version = str(current["metadata"]["resourceVersion"])
        raise RefreshPostponed("the token Secret kept changing")

    async def _patch(self, path: str, version: str, patch: JSON) -> JSON:
        body: JSON = {k: v for k, v in patch.items() if k != "annotations"}
        body["metadata"] = {"resourceVersion": version}
        if "annotations" in patch:
            body["metadata"]["annotations"] = patch["annotations"]
        return await self.kube.merge_patch(path, body)

    # --- Timing ---------------------------------------------------------------------------

    def _schedule(self, key: Key, at: datetime | None) -> None:
        if at is None:
            self.due.pop(key, None)
        else:
            self.due[key] = at

    def _schedule_from(self, secret: JSON) -> None:
        view = read_view(secret)
        decision = plan(
            view, self.clock(), margin=self.settings.refresh_before_seconds, holder=self.holder
        )
        self._schedule(view.key, decision.next_at)

    def _postpone(self, key: Key, why: str) -> None:
        attempts = self.failures.get(key, 0) + 1
        self.failures[key] = attempts
        delay = backoff(
            attempts,
            base=self.settings.refresh_retry_seconds,
            ceiling=self.settings.refresh_retry_max_seconds,
        )
        self.due[key] = self.clock() + timedelta(seconds=delay)
        log.warning("Secret %s/%s: refresh postponed %.0f s (attempt %d): %s",
                    *key, delay, attempts, why)  # fmt: skip


def _clear(*extra: str) -> JSON:
    """Annotation patch removing the lease and a pending request (answered either way)."""
    return {REFRESH_LEASE_ANNOTATION: None, REFRESH_REQUESTED_ANNOTATION: None} | {
        k: None for k in extra
    }


def _resource(gateway: JSON) -> str | None:
    """The RFC 8707 resource, derived exactly as the callback service does for the grant."""
    spec = gateway.get("spec") or {}
    oauth = spec.get("oauth") or {}
    return oauth.get("resource") or spec.get("url") or None
