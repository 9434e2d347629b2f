"""Pure decisions: the status an MCPGateway should have, given what reconcile observed.

Takes `now` and the previous status; touches no network, clock or environment, so an idle
reconcile yields exactly the status it read and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcpgw_core.api import (
    AuthorizationStatus,
    ClientStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    DiscoveryHop,
    DiscoveryStatus,
    MCPGatewayStatus,
    Reason,
    to_wire,
)
from mcpgw_core.discovery import Discovery
from mcpgw_core.errors import OAuthError
from mcpgw_operator.conditions import retry_status, set_condition, summarize_ready

CALLBACK_PENDING = "The callback service reports its health here once it is deployed"


@dataclass(frozen=True)
class ConditionValue:
    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True)
class CallbackHealth:
    """The shared callback service as the operator sees it (the same for every gateway)."""

    callback_ready: ConditionValue
    state_store_ready: ConditionValue


@dataclass(frozen=True)
class AuthorizationView:
    """What the token Secrets of one gateway say about its users' authorization."""

    authorized: ConditionValue
    users_authorized: int
    token_expires_at: str | None


@dataclass(frozen=True)
class Observed:
    """What one reconcile pass found out; any stage may have failed."""

    generation: int
    redirect_uri: str
    discovery: Discovery | None = None
    client: ClientStatus | None = None
    failure: OAuthError | None = None
    failed_stage: str | None = None  # a ConditionType: where the pass stopped
    # Redirect URIs the AS registered for the client, when known (Dynamic registration).
    registered_redirect_uris: tuple[str, ...] | None = None
    callback: CallbackHealth | None = None
    authorization: AuthorizationView | None = None
    authorize_url: str | None = None


def callback_ready(observed: Observed) -> ConditionValue | None:
    """CallbackReady for this gateway: the service's health, then the redirect URI check."""
    uris = observed.registered_redirect_uris
    if uris is not None and observed.redirect_uri not in uris:
        return ConditionValue(
            ConditionStatus.FALSE,
            Reason.REDIRECT_URI_MISMATCH,
            f"The client's registered redirect URIs do not include {observed.redirect_uri}",
        )
    return observed.callback.callback_ready if observed.callback else None


def discovery_status(found: Discovery) -> DiscoveryStatus:
    server = found.authorization_server
    return DiscoveryStatus(
        hops=[DiscoveryHop(url=h.url, outcome=h.outcome) for h in found.hops],
        resource_metadata_url=found.resource_metadata_url,
        issuer=server.issuer,
        authorization_endpoint=server.authorization_endpoint,
        token_endpoint=server.token_endpoint,
        registration_endpoint=server.registration_endpoint,
        code_challenge_methods_supported=list(server.code_challenge_methods_supported),
        token_endpoint_auth_methods_supported=list(server.token_endpoint_auth_methods_supported),
        grant_types_supported=list(server.grant_types_supported),
    )


def _stage_condition(
    observed: Observed, stage: str, ok_reason: str, ok_message: str
) -> tuple[ConditionStatus, str, str]:
    order = (ConditionType.DISCOVERED, ConditionType.REGISTERED)
    if observed.failed_stage is None:
        return ConditionStatus.TRUE, ok_reason, ok_message
    if observed.failed_stage == stage:
        assert observed.failure is not None
        return ConditionStatus.FALSE, observed.failure.reason, observed.failure.message
    if order.index(stage) < order.index(observed.failed_stage):
        return ConditionStatus.TRUE, ok_reason, ok_message
    return (
        ConditionStatus.UNKNOWN,
        Reason.PROGRESSING,
        f"Waiting for {order[order.index(stage) - 1]}",
    )


def desired_status(old: MCPGatewayStatus, observed: Observed, *, now: datetime) -> MCPGatewayStatus:
    conditions: list[Condition] = list(old.conditions)
    gen = observed.generation

    def put(kind: str, status: ConditionStatus, reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(
            conditions, kind, status, reason, message, generation=gen, now=now
        )

    issuer = observed.discovery.issuer if observed.discovery else ""
    put(
        ConditionType.DISCOVERED,
        *_stage_condition(
            observed, ConditionType.DISCOVERED, Reason.DISCOVERED, f"Authorization server {issuer}"
        ),
    )
    mode = observed.client.mode if observed.client else None
    client_id = observed.client.client_id if observed.client else ""
    put(
        ConditionType.REGISTERED,
        *_stage_condition(
            observed,
            ConditionType.REGISTERED,
            Reason.REGISTERED,
            f"Client {client_id} ({mode.value if mode else 'unknown'} registration)",
        ),
    )
    pending = ConditionValue(
        ConditionStatus.UNKNOWN, Reason.AWAITING_CALLBACK_SERVICE, CALLBACK_PENDING
    )
    ready = callback_ready(observed) or pending
    put(ConditionType.CALLBACK_READY, ready.status, ready.reason, ready.message)
    store = observed.callback.state_store_ready if observed.callback else pending
    put(ConditionType.STATE_STORE_READY, store.status, store.reason, store.message)
    authz = observed.authorization.authorized if observed.authorization else pending
    put(ConditionType.AUTHORIZED, authz.status, authz.reason, authz.message)
    put(ConditionType.READY, *summarize_ready(conditions))

    view = observed.authorization
    failure = observed.failure
    retry = None
    if failure is not None:
        attempts = (old.retry.attempts if old.retry else 0) + 1
        retry = retry_status(attempts, failure.reason, now=now)
    return MCPGatewayStatus(
        observed_generation=gen,
        conditions=conditions,
        discovery=discovery_status(observed.discovery) if observed.discovery else old.discovery,
        client=observed.client if observed.client else old.client,
        authorization=AuthorizationStatus(
            redirect_uri=observed.redirect_uri,
            authorize_url=observed.authorize_url,
            token_expires_at=view.token_expires_at if view else None,
            users_authorized=view.users_authorized if view else None,
        ),
        retry=retry,
    )


def status_wire(status: MCPGatewayStatus) -> dict[str, Any]:
    return to_wire(status)


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """An RFC 7386 merge patch turning `old` into `new` (nulls remove keys); {} when equal."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            sub = merge_patch(before, value)
            if sub:
                patch[key] = sub
        elif value != before:
            patch[key] = value
    return patch
