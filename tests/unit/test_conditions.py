"""Condition logic: transition times, the Ready summary, Event transitions and backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpgw_core.api import Condition, ConditionStatus, ConditionType, Reason, to_wire
from mcpgw_operator.conditions import (
    AWAITING_AUTHORIZATION_MESSAGE,
    READY_MESSAGE,
    Transition,
    backoff,
    format_time,
    get_condition,
    retry_status,
    set_condition,
    summarize_ready,
    transitions,
)

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(minutes=7)
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def make_condition(
    condition_type: str,
    status: ConditionStatus,
    reason: str = "SomeReason",
    message: str = "some message",
) -> Condition:
    return Condition(
        type=condition_type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=format_time(T0),
        observed_generation=1,
    )


def all_true(*, authorized: ConditionStatus | None = TRUE) -> list[Condition]:
    conditions = [
        make_condition(t, TRUE)
        for t in ("Discovered", "Registered", "CallbackReady", "StateStoreReady")
    ]
    if authorized is not None:
        conditions.append(make_condition("Authorized", authorized, "Authorized", "one user"))
    return conditions


# --- set_condition -----------------------------------------------------------------------------


def test_new_condition_is_appended_with_now_and_generation() -> None:
    existing = [make_condition("Discovered", TRUE)]
    result = set_condition(
        existing, "Registered", FALSE, "RegistrationRejected", "no", generation=4, now=T1
    )
    assert [c.type for c in result] == ["Discovered", "Registered"]
    added = result[1]
    assert (added.status, added.reason, added.message) == (FALSE, "RegistrationRejected", "no")
    assert added.last_transition_time == "2025-01-02T03:11:05Z"
    assert added.observed_generation == 4


def test_same_status_keeps_transition_time_but_updates_the_rest() -> None:
    existing = [make_condition("Registered", FALSE, "DiscoveryFailed", "old")]
    (updated,) = set_condition(
        existing, "Registered", FALSE, "RegistrationRejected", "new", generation=2, now=T1
    )
    assert updated.last_transition_time == format_time(T0)
    assert (updated.reason, updated.message, updated.observed_generation) == (
        "RegistrationRejected", "new", 2,
    )  # fmt: skip


def test_status_flip_moves_transition_time() -> None:
    existing = [make_condition("Registered", FALSE)]
    (updated,) = set_condition(
        existing, "Registered", TRUE, "Registered", "ok", generation=1, now=T1
    )
    assert updated.last_transition_time == format_time(T1)
    assert updated.status is TRUE


def test_input_is_not_modified_and_order_is_kept() -> None:
    existing = [make_condition("A", TRUE), make_condition("B", TRUE), make_condition("C", TRUE)]
    before = [c.model_copy() for c in existing]
    result = set_condition(existing, "B", FALSE, "Broken", "x", generation=9, now=T1)
    assert existing == before
    assert [c.type for c in result] == ["A", "B", "C"]


def test_setting_the_same_values_again_changes_nothing() -> None:
    # The idle-resync property: recomputing an unchanged state yields an equal wire status.
    once = set_condition([], "Discovered", TRUE, "Discovered", "found", generation=1, now=T0)
    twice = set_condition(once, "Discovered", TRUE, "Discovered", "found", generation=1, now=T1)
    assert [to_wire(c) for c in twice] == [to_wire(c) for c in once]


_statuses = st.sampled_from(list(ConditionStatus))


@given(st.lists(_statuses, min_size=1, max_size=12))
def test_transition_time_moves_exactly_when_status_flips(sequence: list[ConditionStatus]) -> None:
    conditions: list[Condition] = []
    previous: Condition | None = None
    for step, status in enumerate(sequence):
        now = T0 + timedelta(seconds=step)
        conditions = set_condition(
            conditions, "X", status, "R", f"m{step}", generation=step, now=now
        )
        current = get_condition(conditions, "X")
        assert current is not None
        expected = (
            previous.last_transition_time
            if previous is not None and previous.status == status
            else format_time(now)
        )
        assert current.last_transition_time == expected
        previous = current
    assert len(conditions) == 1


def test_format_time_is_utc_with_z_and_refuses_naive_times() -> None:
    plus_two = datetime(2025, 1, 2, 5, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(plus_two) == "2025-01-02T03:04:05Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2025, 1, 2))


# --- summarize_ready ---------------------------------------------------------------------------


def _replace(conditions: list[Condition], replacement: Condition) -> list[Condition]:
    return [replacement if c.type == replacement.type else c for c in conditions]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param(all_true(), (TRUE, Reason.READY, READY_MESSAGE), id="all-true"),
        pytest.param(
            [], (UNKNOWN, Reason.PROGRESSING, "Waiting for Discovered"), id="nothing-known-yet"
        ),
        pytest.param(
            _replace(all_true(), make_condition("Registered", FALSE, "RegistrationRejected", "r")),
            (FALSE, "RegistrationRejected", "r"),
            id="registration-failed",
        ),
        pytest.param(
            _replace(
                _replace(all_true(), make_condition("Registered", UNKNOWN, "Progressing", "p")),
                make_condition("StateStoreReady", FALSE, "StateStoreUnreachable", "redis down"),
            ),
            (FALSE, "StateStoreUnreachable", "redis down"),
            id="false-beats-an-earlier-unknown",
        ),
        pytest.param(
            _replace(all_true(),
                     make_condition("CallbackReady", UNKNOWN, "AwaitingCallbackService", "w")),
            (UNKNOWN, "AwaitingCallbackService", "w"),
            id="callback-unknown",
        ),
        pytest.param(
            [c for c in all_true() if c.type != "StateStoreReady"],
            (UNKNOWN, Reason.PROGRESSING, "Waiting for StateStoreReady"),
            id="prerequisite-missing",
        ),
        pytest.param(
            all_true(authorized=None),
            (FALSE, Reason.AWAITING_AUTHORIZATION, AWAITING_AUTHORIZATION_MESSAGE),
            id="authorized-missing",
        ),
        pytest.param(
            all_true(authorized=UNKNOWN),
            (FALSE, Reason.AWAITING_AUTHORIZATION, AWAITING_AUTHORIZATION_MESSAGE),
            id="authorized-unknown",
        ),
        pytest.param(
            _replace(all_true(),
                     make_condition("Authorized", FALSE, "RefreshFailed", "invalid_grant")),
            (FALSE, "RefreshFailed", "invalid_grant"),
            id="authorized-false-passes-through",
        ),
        pytest.param(
            _replace(all_true(), make_condition("Authorized", FALSE, "AwaitingAuthorization", "x")),
            (FALSE, Reason.AWAITING_AUTHORIZATION, AWAITING_AUTHORIZATION_MESSAGE),
            id="authorized-false-awaiting",
        ),
    ],
)  # fmt: skip
def test_summarize_ready(
    conditions: list[Condition], expected: tuple[ConditionStatus, str, str]
) -> None:
    assert summarize_ready(conditions) == expected


def test_ready_itself_does_not_feed_the_summary() -> None:
    stale_ready = make_condition(ConditionType.READY, FALSE, "DiscoveryFailed", "old")
    assert summarize_ready([stale_ready, *all_true()])[0] is TRUE


# --- transitions -------------------------------------------------------------------------------


def test_transitions_report_flips_only() -> None:
    old = [
        make_condition("Discovered", UNKNOWN),
        make_condition("Registered", FALSE, "DiscoveryFailed"),
        make_condition("Ready", FALSE, "DiscoveryFailed"),
        make_condition("Gone", TRUE),
    ]
    new = [
        make_condition("Discovered", TRUE, "Discovered"),
        make_condition("Registered", FALSE, "RegistrationRejected"),  # reason only: no Event
        make_condition("Ready", FALSE, "RegistrationRejected"),
        make_condition("Authorized", UNKNOWN, "AwaitingAuthorization"),  # appears Unknown
        make_condition("CallbackReady", TRUE, "CallbackReady"),  # appears True
    ]
    assert transitions(old, new) == [
        Transition("Discovered", UNKNOWN, TRUE, "Discovered"),
        Transition("CallbackReady", None, TRUE, "CallbackReady"),
    ]


def test_no_transitions_between_equal_lists() -> None:
    assert transitions(all_true(), all_true()) == []


# --- backoff -----------------------------------------------------------------------------------


def test_backoff_doubles_from_five_seconds_to_a_five_minute_cap() -> None:
    delays = [backoff(n) for n in range(1, 10)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_backoff_stays_finite_for_huge_attempt_counts() -> None:
    assert backoff(100_000) == 300


def test_backoff_refuses_zero_attempts() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        backoff(0)


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=2**32))
def test_jitter_only_shortens_by_at_most_a_fifth(attempts: int, seed: int) -> None:
    plain = backoff(attempts)
    jittered = backoff(attempts, rng=random.Random(seed))
    assert plain * 0.8 <= jittered <= plain
    assert jittered == backoff(attempts, rng=random.Random(seed))  # deterministic per seed


def test_jitter_spreads_retries() -> None:
    rng = random.Random(7)
    assert len({backoff(3, rng=rng) for _ in range(20)}) > 10


def test_retry_status_makes_backoff_visible() -> None:
    retry = retry_status(3, Reason.DISCOVERY_FAILED, now=T0)
    assert to_wire(retry) == {
        "attempts": 3,
        "nextRetryAt": "2025-01-02T03:04:25Z",
        "lastErrorReason": "DiscoveryFailed",
    }
