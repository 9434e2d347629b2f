"""Kopf handlers for MCPGateway: thin wrappers that hand every change to the reconciler.

Level-based: any event on a gateway (creation, spec change, our own status write, the initial
listing after a restart) runs the same pass, which writes nothing when nothing differs. A
per-gateway timer retries failures when their backoff is due and resyncs periodically, which
also rebuilds a deleted Secret; deleting an owned Secret triggers that at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from mcpgw_core.api import GROUP, PLURAL, VERSION, DeletionPolicy, MCPGatewaySpec
from mcpgw_core.kube import Kube, core_path, gateway_path
from mcpgw_operator import children, runtime
from mcpgw_operator.registrar import RegistrationBusy

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def gateway_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    if type == "DELETED":
        return
    await _run(dict(body))


@kopf.timer(GROUP, VERSION, PLURAL, interval=10.0, sharp=False)
async def gateway_tick(body: kopf.Body, **_: Any) -> None:
    state = runtime.get()
    key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
    now = _now()
    last = state.last_full_pass.get(key)
    force = last is None or (now - last).total_seconds() >= state.settings.resync_seconds
    await _run(dict(body), trigger="resync" if force else "tick")


@kopf.on.event("v1", "secrets", labels={children.GATEWAY_LABEL: kopf.PRESENT})
async def owned_secret_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    if type != "DELETED":
        return
    meta = body["metadata"]
    owner = await runtime.get().kube.get(
        gateway_path(meta["namespace"], meta["labels"][children.GATEWAY_LABEL])
    )
    if owner is not None:
        await _run(owner, trigger="resync")


async def _run(body: dict[str, Any], *, trigger: str = "event") -> None:
    state = runtime.get()
    meta = body["metadata"]
    now = _now()
    try:
        ran = await state.reconciler.reconcile(body, now, trigger=trigger)
    except RegistrationBusy:
        log.info(
            "gateway %s/%s: registration record changed underneath; retrying soon", *_key(meta)
        )
        return
    if ran:
        state.last_full_pass[f"{meta['namespace']}/{meta['name']}"] = now


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def gateway_deleted(body: kopf.Body, retry: int, **_: Any) -> None:
    state = runtime.get()
    meta = body["metadata"]
    spec = MCPGatewaySpec.model_validate(dict(body.get("spec") or {}))
    if spec.deletion_policy == DeletionPolicy.ORPHAN:
        return
    kube: Kube = state.kube
    secret = await kube.get(
        core_path("secrets", meta["namespace"], children.registration_secret_name(meta["name"]))
    )
    record = children.read_registration_record(secret)
    leftovers = [record.get("registration"), *(record.get("pendingDeletion") or [])]
    leftovers = [r for r in leftovers if r]
    remaining = [r for r in leftovers if not await state.reconciler.registrar.delete_at_server(r)]
    if not remaining:
        return
    names = ", ".join(f"{r.get('clientId')} at {r.get('issuer')}" for r in remaining)
    if retry + 1 >= state.settings.delete_attempts:
        # Deletion must not hang forever on an authorization server that is gone.
        await state.events.warn(
            dict(body),
            "RegistrationLeftBehind",
            f"Gave up deleting client registration(s) after {retry + 1} attempts: {names}; "
            "delete them at the authorization server",
        )
        return
    raise kopf.TemporaryError(
        f"could not delete client registration(s): {names}", delay=min(60, 5 * 2**retry)
    )


def _key(meta: Any) -> tuple[str, str]:
    return meta["namespace"], meta["name"]
