"""Kopf handlers for MCPGateway: thin wrappers that hand every change to the reconciler.

Level-based: any event on a gateway (creation, spec change, our own status write, deletion
requested, the initial listing after a restart) runs the same pass, which writes nothing when
nothing differs. The scheduler re-runs passes when a retry is due and resyncs periodically;
deleting an owned Secret triggers a pass at once, so it is rebuilt.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from mcpgw_core.api import GROUP, PLURAL, VERSION
from mcpgw_core.kube import KubeError, gateway_path
from mcpgw_operator import children, runtime
from mcpgw_operator.registrar import RegistrationBusy
from mcpgw_operator.scheduler import Key

log = logging.getLogger(__name__)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def gateway_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    state = runtime.get()
    key: Key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if type == "DELETED":
        state.scheduler.forget(key)
        return
    state.scheduler.saw(key, ((body.get("status") or {}).get("retry") or {}).get("nextRetryAt"))
    await run_pass(key, "event", dict(body))


@kopf.on.event("v1", "secrets", labels={children.GATEWAY_LABEL: kopf.PRESENT})
async def owned_secret_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    # A consumer Secret edited or deleted by someone is repaired at once; a token Secret
    # written by the callback service updates Authorized at once. The pass writes nothing
    # when the change was our own.
    meta = body["metadata"]
    role = (meta.get("labels") or {}).get(children.ROLE_LABEL)
    if type not in ("ADDED", "MODIFIED", "DELETED") or (
        role == "registration" and type != "DELETED"
    ):
        return
    await run_pass((meta["namespace"], meta["labels"][children.GATEWAY_LABEL]), "resync")


async def run_pass(key: Key, trigger: str, body: dict[str, Any] | None = None) -> None:
    """Reconcile one gateway; failures are reported in its status, never raised to Kopf."""
    state = runtime.get()
    now = datetime.now(UTC)
    try:
        if body is None:
            body = await state.kube.get(gateway_path(*key))
            if body is None:
                state.scheduler.forget(key)
                return
        if await state.reconciler.reconcile(body, now, trigger=trigger):
            state.scheduler.passed(key, now)
        state.scheduler.api_succeeded(key)
    except RegistrationBusy:
        log.info("gateway %s/%s: registration record changed underneath; retrying", *key)
        state.scheduler.soon(key)
    except KubeError as exc:
        # The API server is unreachable, overloaded or refused a write: back off, try again.
        delay = state.scheduler.api_failed(key, now)
        log.warning(
            "gateway %s/%s: Kubernetes API error (%s %s: %s); retrying in %.0f s",
            *key,
            exc.status,
            exc.reason,
            exc.message,
            delay,
        )
