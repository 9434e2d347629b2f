"""The callback service's objects and health: a loop that creates, repairs and probes them.

Every `callback_infra_seconds` (and at start-up) one pass: create the HMAC key-ring Secret when
absent (an existing one is never touched), create or patch (only on difference) the Deployment
and the Service, probe `/readyz`, and evaluate CallbackReady and StateStoreReady. When that
health changes, every known gateway is reconciled soon, so each status follows; an unchanged
service makes no writes at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from mcpgw_core.http import HttpError, send
from mcpgw_core.keyring import generate_key, new_key_id
from mcpgw_core.kube import Kube, KubeError, core_path
from mcpgw_operator import callback_manifests as manifests
from mcpgw_operator.callback_health import (
    CallbackObservation,
    ReadyzAnswer,
    evaluate_health,
    readyz_answer,
)
from mcpgw_operator.decide import CallbackHealth
from mcpgw_operator.settings import OperatorSettings

JSON = dict[str, Any]
log = logging.getLogger(__name__)


def deployment_path(namespace: str, name: str = "") -> str:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    return f"{base}/{name}" if name else base


def contains(actual: object, desired: object) -> bool:
    """Whether `actual` already has every field of `desired` (the API server adds defaults and
    status, so equality would never hold; lists must match item by item)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            contains(actual.get(k), v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(contains(a, d) for a, d in zip(actual, desired, strict=True))
        )
    return actual == desired


@dataclass
class CallbackInfra:
    """Owns the callback objects; `health()` is what every gateway's status reports."""

    kube: Kube
    http: httpx.AsyncClient
    settings: OperatorSettings
    on_change: Callable[[], None]
    current: CallbackHealth | None = None

    def health(self) -> CallbackHealth | None:
        return self.current

    async def run(self) -> None:
        """Forever: one pass, then wait; passes never overlap."""
        while True:
            await self.reconcile_once()
            await asyncio.sleep(self.settings.callback_infra_seconds)

    async def reconcile_once(self) -> CallbackHealth:
        try:
            seen = await self._observe()
        except KubeError as exc:
            # Typically missing RBAC; the message names the status, never a request body.
            log.warning(
                "callback service objects: Kubernetes API error %s %s", exc.status, exc.reason
            )
            if self.current is not None and (exc.status == 0 or exc.status >= 500):
                # A busy or briefly unreachable API server says nothing about the callback
                # service; flipping every gateway's status to Unknown would only add load.
                return self.current
            seen = CallbackObservation(
                api_error=f"Kubernetes API answered {exc.status} {exc.reason}"
            )
        health = evaluate_health(self.settings, seen)
        if health != self.current:
            log.info(
                "callback service health: CallbackReady=%s (%s), StateStoreReady=%s (%s)",
                health.callback_ready.status.value,
                health.callback_ready.reason,
                health.state_store_ready.status.value,
                health.state_store_ready.reason,
            )
            self.current = health
            self.on_change()
        return health

    async def _observe(self) -> CallbackObservation:
        s = self.settings
        ns = s.callback_namespace
        deployment: JSON | None
        secret = await self.kube.get(core_path("secrets", ns, s.key_secret_name))
        if s.callback_manage:
            secret = await self._ensure_key_secret(secret)
            deployment = await self._ensure(
                deployment_path(ns), deployment_path(ns, s.callback_name),
                manifests.desired_deployment(s),
            )  # fmt: skip
            await self._ensure(
                core_path("services", ns), core_path("services", ns, s.callback_name),
                manifests.desired_service(s),
            )  # fmt: skip
        else:
            deployment = await self.kube.get(deployment_path(ns, s.callback_name))
        readyz = await self._probe_readyz()
        redis_ping = None
        if not readyz.answered and s.callback_redis_url:
            redis_ping = await self._ping_redis(s.callback_redis_url)
        return CallbackObservation(
            key_problem=manifests.key_ring_problem(secret),
            deployment=deployment,
            readyz=readyz,
            redis_ping=redis_ping,
        )

    async def _ensure_key_secret(self, existing: JSON | None) -> JSON | None:
        if existing is not None:
            return existing  # never rewritten: that would break every flow in flight
        kid = new_key_id(datetime.now(UTC))
        desired = manifests.desired_key_secret(self.settings, None, (kid, generate_key()))
        assert desired is not None
        ns, name = self.settings.callback_namespace, self.settings.key_secret_name
        try:
            created = await self.kube.create(core_path("secrets", ns), desired)
        except KubeError as exc:
            if not exc.conflict:
                raise
            # Another operator instance won the race; its key stands, ours is dropped.
            return await self.kube.get(core_path("secrets", ns, name))
        log.info("created the HMAC key-ring Secret %s/%s (key id %s)", ns, name, kid)
        return created

    async def _ensure(self, collection: str, path: str, desired: JSON) -> JSON:
        """Create `desired` if absent; patch it when a field we set differs; else no write."""
        what = f"{desired['kind']} {desired['metadata']['namespace']}/{desired['metadata']['name']}"
        actual = await self.kube.get(path)
        if actual is None:
            log.info("creating %s", what)
            return await self.kube.create(collection, desired)
        wanted = {"metadata": {"labels": desired["metadata"]["labels"]}, "spec": desired["spec"]}
        if contains(actual, wanted):
            return actual
        log.info("updating %s: it differs from the operator's settings", what)
        return await self.kube.merge_patch(path, wanted)

    async def _probe_readyz(self) -> ReadyzAnswer:
        url = f"{self.settings.health_base_url}/readyz"
        try:
            reply = await send(
                self.http, "GET", url, time_limit=self.settings.callback_health_timeout_seconds
            )
        except HttpError as exc:
            return ReadyzAnswer(error=exc.detail)
        try:
            body: object = reply.json_object()
        except HttpError:
            body = None
        return readyz_answer(reply.status_code, body)

    async def _ping_redis(self, url: str) -> bool:
        """The operator's own PING, used only when /readyz cannot tell; the URL is never logged."""
        timeout = self.settings.callback_health_timeout_seconds
        try:
            client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        except ValueError:
            return False  # not a Redis URL; its text may hold a password, so it is not shown
        try:
            async with asyncio.timeout(timeout):
                return bool(await client.ping())
        except (RedisError, OSError, TimeoutError):
            return False
        finally:
            await client.aclose()
