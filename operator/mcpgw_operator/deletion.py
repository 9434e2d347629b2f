"""Deletion of an MCPGateway: our finalizer, RFC 7592 DELETE with bounded attempts, release.

Only a gateway with something to clean up outside the cluster (a dynamically registered
client, with deletionPolicy Delete) carries the finalizer.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mcpgw_core.api import GROUP, DeletionPolicy, MCPGatewaySpec, Reason, to_wire
from mcpgw_core.kube import Kube, core_path, gateway_path
from mcpgw_operator import children
from mcpgw_operator.conditions import retry_status

if TYPE_CHECKING:
    from mcpgw_operator.reconcile import Reconciler

JSON = dict[str, Any]
# Kopf is configured with another finalizer name (startup.py); it removes its own when no
# handler needs it, so sharing one name would make the two fight.
FINALIZER = f"{GROUP}/registration-cleanup"


async def ensure_finalizer(kube: Kube, body: JSON) -> None:
    """Add our finalizer (one write, guarded by resourceVersion) unless it is there."""
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if FINALIZER in finalizers:
        return
    updated = await kube.merge_patch(
        gateway_path(meta["namespace"], meta["name"]),
        {
            "metadata": {
                "finalizers": [*finalizers, FINALIZER],
                "resourceVersion": meta["resourceVersion"],
            }
        },
    )
    meta["finalizers"] = updated["metadata"].get("finalizers")
    meta["resourceVersion"] = updated["metadata"]["resourceVersion"]


async def finalize(reconciler: Reconciler, body: JSON, now: datetime) -> None:
    """Delete the registrations at the AS (policy Delete), retry with backoff a bounded number
    of times, then release the object whatever happened, saying what was left behind."""
    meta = body["metadata"]
    try:
        policy = MCPGatewaySpec.model_validate(body.get("spec") or {}).deletion_policy
    except ValidationError:
        policy = DeletionPolicy.DELETE
    remaining: list[JSON] = []
    if policy == DeletionPolicy.DELETE:
        remaining = await _delete_registrations(reconciler, body)
    if remaining:
        status = body.get("status") or {}
        attempts = int((status.get("retry") or {}).get("attempts", 0)) + 1
        if attempts < reconciler.settings.delete_attempts:
            retry = retry_status(attempts, Reason.REGISTRATION_DELETE_FAILED, now=now)
            await reconciler.kube.merge_patch(
                gateway_path(meta["namespace"], meta["name"], "status"),
                {"status": {"retry": to_wire(retry)}},
            )
            return
        names = ", ".join(
            f"{r.get('clientId')} ({r.get('clientName')}) at {r.get('issuer')}" for r in remaining
        )
        # Deletion must not hang forever on an authorization server that is gone.
        await reconciler.events.warn(
            body,
            "RegistrationLeftBehind",
            f"Gave up deleting client registration(s) after {attempts} attempts: {names}; "
            "delete them at the authorization server",
        )
    finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    await reconciler.kube.merge_patch(
        gateway_path(meta["namespace"], meta["name"]),
        {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
    )


async def _delete_registrations(reconciler: Reconciler, body: JSON) -> list[JSON]:
    """RFC 7592 DELETE of the current and any replaced registrations; those still there."""
    meta = body["metadata"]
    secret = await reconciler.kube.get(
        core_path("secrets", meta["namespace"], children.registration_secret_name(meta["name"]))
    )
    record = children.read_registration_record(secret)
    leftovers = [
        r for r in [record.get("registration"), *(record.get("pendingDeletion") or [])] if r
    ]
    remaining = [r for r in leftovers if not await reconciler.registrar.delete_at_server(r)]
    gone = [r for r in leftovers if r not in remaining]
    if gone:
        ids = ", ".join(str(r.get("clientId")) for r in gone)
        await reconciler.events.normal(
            body,
            "RegistrationDeleted",
            f"Deleted client registration(s) {ids} at the authorization server",
        )
    return remaining
