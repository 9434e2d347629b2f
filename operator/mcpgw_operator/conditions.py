"""Pure condition logic: setting conditions, the Ready summary, transitions for Events, backoff.

Nothing here reads the clock: callers pass `now`, so an idle reconcile computes exactly the
status it read and writes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from mcpgw_core.api import Condition, ConditionStatus, ConditionType, Reason, RetryStatus

# Ready summarizes these, in this order: the first one that is not True explains Ready.
READY_PREREQUISITES: tuple[str, ...] = (
    ConditionType.DISCOVERED,
    ConditionType.REGISTERED,
    ConditionType.CALLBACK_READY,
    ConditionType.STATE_STORE_READY,
)
READY_MESSAGE = "Registered, callback service ready and at least one user authorized"
AWAITING_AUTHORIZATION_MESSAGE = "Registered; waiting for a user to complete authorization"

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 300.0
# With jitter, a delay is drawn from [delay * (1 - JITTER), delay]: never longer than the cap.
BACKOFF_JITTER = 0.2


class Transition(NamedTuple):
    """A condition whose status flipped; one Event each."""

    type: str
    old_status: ConditionStatus | None
    new_status: ConditionStatus
    reason: str


def format_time(now: datetime) -> str:
    """RFC 3339 in UTC at second precision, the form metav1.Time round-trips unchanged."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    """The condition of that type, if present."""
    return next((c for c in conditions if c.type == condition_type), None)


def set_condition(
    conditions: Sequence[Condition],
    condition_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """A new list with the condition set; the input is not modified.

    lastTransitionTime moves only when the status flips (or the condition is new); reason,
    message and observedGeneration are updated in place. Order is kept and new types are
    appended, so setting the same values twice yields an equal list.
    """
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != condition_type:
            result.append(condition)
            continue
        found = True
        flipped = condition.status != status
        result.append(
            condition.model_copy(
                update={
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "observed_generation": generation,
                    "last_transition_time": (
                        format_time(now) if flipped else condition.last_transition_time
                    ),
                }
            )
        )
    if not found:
        result.append(
            Condition(
                type=condition_type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=format_time(now),
                observed_generation=generation,
            )
        )
    return result


def summarize_ready(conditions: Sequence[Condition]) -> tuple[ConditionStatus, str, str]:
    """Ready's (status, reason, message), derived from the other conditions.

    - The first prerequisite (Discovered, Registered, CallbackReady, StateStoreReady) that is
      False makes Ready False with its reason and message: something is broken.
    - Otherwise the first one that is Unknown or absent makes Ready Unknown with its reason:
      the operator has not found out yet.
    - With all four True, Ready follows Authorized. A gateway nobody has authorized yet is not
      usable, so Ready is False with AwaitingAuthorization (a definite state that needs a human,
      not an unknown one). Authorized=False with another reason (TokenExpired, RefreshFailed)
      passes through.
    """
    for wanted in (ConditionStatus.FALSE, ConditionStatus.UNKNOWN):
        for condition_type in READY_PREREQUISITES:
            condition = get_condition(conditions, condition_type)
            if condition is None:
                if wanted is ConditionStatus.UNKNOWN:
                    return wanted, Reason.PROGRESSING, f"Waiting for {condition_type}"
            elif condition.status == wanted:
                return wanted, condition.reason, condition.message
    authorized = get_condition(conditions, ConditionType.AUTHORIZED)
    if authorized is not None and authorized.status == ConditionStatus.TRUE:
        return ConditionStatus.TRUE, Reason.READY, READY_MESSAGE
    if (
        authorized is not None
        and authorized.status == ConditionStatus.FALSE
        and authorized.reason != Reason.AWAITING_AUTHORIZATION
    ):
        return ConditionStatus.FALSE, authorized.reason, authorized.message
    return ConditionStatus.FALSE, Reason.AWAITING_AUTHORIZATION, AWAITING_AUTHORIZATION_MESSAGE


def transitions(old: Sequence[Condition], new: Sequence[Condition]) -> list[Transition]:
    """Status flips from `old` to `new`, in `new`'s order; one Event each.

    A reason or message change without a status flip is not a transition (status shows it;
    an Event per reconcile would flood). A condition that appears counts unless it appears as
    Unknown, which announces nothing. A condition that disappears is not reported.
    """
    result: list[Transition] = []
    for condition in new:
        before = get_condition(old, condition.type)
        old_status = before.status if before is not None else None
        if old_status == condition.status:
            continue
        if old_status is None and condition.status == ConditionStatus.UNKNOWN:
            continue
        result.append(Transition(condition.type, old_status, condition.status, condition.reason))
    return result


def backoff(attempts: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after `attempts` consecutive failures: 5, 10, 20, ... capped at 300.

    Deterministic unless `rng` is given; then the delay shrinks by up to 20 % so that many
    gateways failing together (an authorization server outage) do not retry in lockstep.
    """
    if attempts < 1:
        raise ValueError("attempts counts failures and starts at 1")
    # Bounding the exponent keeps 2.0**n finite for any attempt count.
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(attempts - 1, 32))
    if rng is not None:
        delay *= 1.0 - BACKOFF_JITTER * rng.random()
    return delay


def retry_status(
    attempts: int, reason: str, *, now: datetime, rng: random.Random | None = None
) -> RetryStatus:
    """status.retry after `attempts` consecutive failures, the last one with `reason`."""
    delay = backoff(attempts, rng=rng)
    return RetryStatus(
        attempts=attempts,
        next_retry_at=format_time(now + timedelta(seconds=delay)),
        last_error_reason=reason,
    )
