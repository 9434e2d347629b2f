"""Pure refresh decisions for one token Secret: refresh now, clear a request, or wait until when.

The lease annotation (`<holder> <until>`) is what serializes refreshes across operator
processes: it is claimed with the Secret's resourceVersion before the AS is called, so of two
processes that read the same version only one can claim it; the other sees the lease and waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mcpgw_core.token_secrets import (
    GATEWAY_LABEL,
    REFRESH_ERROR_ANNOTATION,
    REFRESH_LEASE_ANNOTATION,
    REFRESH_REQUESTED_ANNOTATION,
    USER_ANNOTATION,
    TokenSecretInvalid,
    parse_token_set,
    rfc3339,
)
from mcpgw_core.tokens import TokenSet

JSON = dict[str, Any]


class Action(StrEnum):
    REFRESH = "Refresh"
    CLEAR_REQUEST = "ClearRequest"  # a forced refresh asked for a set that cannot be refreshed
    WAIT = "Wait"


@dataclass(frozen=True)
class Plan:
    action: Action
    why: str
    # When to look again (WAIT); None means only a change to the Secret calls for a new look.
    next_at: datetime | None = None


@dataclass(frozen=True)
class TokenSecretView:
    """What the refresher needs from a token Secret; `tokens` is None when it does not parse."""

    namespace: str
    name: str
    gateway: str
    user: str
    resource_version: str
    tokens: TokenSet | None
    requested: bool
    refresh_error: str | None
    lease_holder: str | None
    lease_until: datetime | None

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def lease_value(holder: str, until: datetime) -> str:
    return f"{holder} {rfc3339(until)}"


def parse_lease(raw: object) -> tuple[str | None, datetime | None]:
    if not isinstance(raw, str):
        return None, None
    holder, _, until = raw.strip().partition(" ")
    try:
        return holder or None, datetime.fromisoformat(until.replace("Z", "+00:00"))
    except ValueError:
        return holder or None, None


def read_view(secret: JSON) -> TokenSecretView:
    meta = secret.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    try:
        tokens: TokenSet | None = parse_token_set(secret)
    except TokenSecretInvalid:
        tokens = None
    holder, until = parse_lease(annotations.get(REFRESH_LEASE_ANNOTATION))
    return TokenSecretView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        gateway=str((meta.get("labels") or {}).get(GATEWAY_LABEL, "")),
        user=str(annotations.get(USER_ANNOTATION, "")),
        resource_version=str(meta.get("resourceVersion", "")),
        tokens=tokens,
        requested=REFRESH_REQUESTED_ANNOTATION in annotations,
        refresh_error=annotations.get(REFRESH_ERROR_ANNOTATION) or None,
        lease_holder=holder,
        lease_until=until,
    )


def plan(view: TokenSecretView, now: datetime, *, margin: float, holder: str) -> Plan:
    """Refresh when asked to (the annotation) or when the access token expires within `margin`."""
    if view.lease_holder not in (None, holder) and view.lease_until and view.lease_until > now:
        # Another process is refreshing; look again when its lease runs out.
        return Plan(Action.WAIT, "leased", view.lease_until)
    tokens = view.tokens
    if tokens is None or not tokens.refresh_token:
        why = "unreadable" if tokens is None else "no-refresh-token"
        return Plan(Action.CLEAR_REQUEST if view.requested else Action.WAIT, why)
    if view.requested:
        return Plan(Action.REFRESH, "requested")
    if view.refresh_error:
        # A definite failure is not retried by itself; a new authorization or a request is.
        return Plan(Action.WAIT, "failed")
    if tokens.expires_at is None:
        return Plan(Action.WAIT, "no-expiry")
    due_at = tokens.expires_at - timedelta(seconds=margin)
    if due_at <= now:
        return Plan(Action.REFRESH, "due")
    return Plan(Action.WAIT, "not-due", due_at)


def same_grant(before: TokenSet | None, after: TokenSet | None) -> bool:
    """Whether a re-read Secret still holds the tokens a refresh started from.

    If not, someone (the callback service, after a new authorization) stored another grant,
    which a refresh result must never overwrite.
    """
    if before is None or after is None:
        return False
    return (before.refresh_token, before.access_token) == (after.refresh_token, after.access_token)


def data_patch(current: JSON, new_data: dict[str, str], token_keys: tuple[str, ...]) -> JSON:
    """A merge patch of `data` to `new_data`, removing token keys the new set lacks."""
    old = current.get("data") or {}
    patch: JSON = {k: None for k in old if k in token_keys and k not in new_data}
    patch.update({k: v for k, v in new_data.items() if old.get(k) != v})
    return patch


def backoff(attempts: int, *, base: float, ceiling: float) -> float:
    """Seconds before retrying after `attempts` consecutive ambiguous failures (1, 2, ...)."""
    return float(min(ceiling, base * 2 ** max(0, attempts - 1)))
