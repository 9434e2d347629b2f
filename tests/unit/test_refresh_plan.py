"""The refresh decision for a token Secret: when to refresh, who holds the lease, what to write."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from mcpgw_core.token_secrets import (
    REFRESH_ERROR_ANNOTATION,
    REFRESH_LEASE_ANNOTATION,
    REFRESH_REQUESTED_ANNOTATION,
    TOKEN_KEYS,
    token_data,
    token_secret,
)
from mcpgw_core.tokens import TokenSet
from mcpgw_operator.refresh_plan import (
    Action,
    backoff,
    data_patch,
    lease_value,
    parse_lease,
    plan,
    read_view,
    same_grant,
)

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
ME, OTHER = "operator-a", "operator-b"


def make_tokens(
    *, expires_in: float | None = 600, refresh: str | None = "rt-1", access: str = "at-1"
) -> TokenSet:
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=None if expires_in is None else NOW + timedelta(seconds=expires_in),
        obtained_at=NOW,
    )


def secret(tokens: TokenSet, **annotations: str) -> dict[str, object]:
    body = token_secret(namespace="ns", gateway="gw", gateway_uid="u", user="alice", tokens=tokens)
    body["metadata"]["annotations"].update(annotations)
    body["metadata"]["resourceVersion"] = "42"
    return body


def decide(tokens: TokenSet, margin: float = 60, **annotations: str) -> tuple[Action, str]:
    result = plan(read_view(secret(tokens, **annotations)), NOW, margin=margin, holder=ME)
    return result.action, result.why


def test_read_view_takes_identity_from_the_secret() -> None:
    view = read_view(secret(make_tokens()))
    assert (view.namespace, view.gateway, view.user, view.resource_version) == (
        "ns",
        "gw",
        "alice",
        "42",
    )
    assert view.key == ("ns", view.name)
    assert not view.requested


def test_not_due_waits_until_expiry_minus_the_margin() -> None:
    result = plan(read_view(secret(make_tokens(expires_in=600))), NOW, margin=60, holder=ME)
    assert (result.action, result.why) == (Action.WAIT, "not-due")
    assert result.next_at == NOW + timedelta(seconds=540)


@pytest.mark.parametrize(
    "expires_in",
    [
        pytest.param(59, id="inside-margin"),
        pytest.param(60, id="at-margin"),
        pytest.param(-5, id="expired"),
    ],
)
def test_due_within_the_margin_refreshes(expires_in: float) -> None:
    assert decide(make_tokens(expires_in=expires_in)) == (Action.REFRESH, "due")


def test_a_request_refreshes_even_when_not_due() -> None:
    annotations = {REFRESH_REQUESTED_ANNOTATION: "now"}
    assert decide(make_tokens(expires_in=3600), **annotations) == (Action.REFRESH, "requested")


def test_a_request_retries_after_a_recorded_failure_but_time_alone_does_not() -> None:
    failed = {REFRESH_ERROR_ANNOTATION: "invalid_grant"}
    assert decide(make_tokens(expires_in=-5), **failed) == (Action.WAIT, "failed")
    asked = {**failed, REFRESH_REQUESTED_ANNOTATION: "again"}
    assert decide(make_tokens(expires_in=-5), **asked) == (Action.REFRESH, "requested")


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({}, (Action.WAIT, "no-refresh-token"), id="no-request"),
        pytest.param(
            {REFRESH_REQUESTED_ANNOTATION: "x"},
            (Action.CLEAR_REQUEST, "no-refresh-token"),
            id="request-cleared",
        ),
    ],
)
def test_without_a_refresh_token_nothing_is_refreshed(
    annotations: dict[str, str], expected: tuple[Action, str]
) -> None:
    assert decide(make_tokens(expires_in=-5, refresh=None), **annotations) == expected


def test_unknown_expiry_is_not_refreshed_by_time() -> None:
    assert decide(make_tokens(expires_in=None)) == (Action.WAIT, "no-expiry")


def test_another_holders_live_lease_blocks_until_it_ends() -> None:
    until = NOW + timedelta(seconds=30)
    annotations = {
        REFRESH_LEASE_ANNOTATION: lease_value(OTHER, until),
        REFRESH_REQUESTED_ANNOTATION: "x",
    }
    result = plan(read_view(secret(make_tokens(), **annotations)), NOW, margin=60, holder=ME)
    assert (result.action, result.why, result.next_at) == (Action.WAIT, "leased", until)


@pytest.mark.parametrize(
    "lease",
    [
        pytest.param(lease_value(OTHER, NOW - timedelta(seconds=1)), id="expired-lease"),
        pytest.param(lease_value(ME, NOW + timedelta(seconds=30)), id="own-lease"),
        pytest.param("garbage", id="unparseable-lease"),
    ],
)
def test_an_expired_own_or_broken_lease_does_not_block(lease: str) -> None:
    annotations = {REFRESH_LEASE_ANNOTATION: lease, REFRESH_REQUESTED_ANNOTATION: "x"}
    assert decide(make_tokens(), **annotations) == (Action.REFRESH, "requested")


def test_lease_round_trips() -> None:
    until = NOW + timedelta(seconds=60)
    assert parse_lease(lease_value(ME, until)) == (ME, until)
    assert parse_lease(None) == (None, None)


def test_same_grant_tells_a_new_authorization_from_annotation_changes() -> None:
    before = make_tokens()
    assert same_grant(before, make_tokens())
    assert not same_grant(before, make_tokens(refresh="rt-2"))
    assert not same_grant(before, make_tokens(access="at-2"))
    assert not same_grant(before, None)


def test_data_patch_replaces_token_keys_and_removes_the_ones_the_new_set_lacks() -> None:
    old = secret(make_tokens())
    old["data"]["id_token"] = base64.b64encode(b"old-id-token").decode()
    old["data"]["unrelated"] = "eA=="
    new_tokens = make_tokens(access="at-2", refresh="rt-2", expires_in=900)
    patch = data_patch(old, token_data(new_tokens), TOKEN_KEYS)
    assert patch["id_token"] is None
    assert "unrelated" not in patch  # not ours to remove
    assert base64.b64decode(patch["access_token"]) == b"at-2"
    assert base64.b64decode(patch["refresh_token"]) == b"rt-2"
    assert "token_type" not in patch  # unchanged values are not rewritten


def test_data_patch_keeps_the_old_refresh_token_when_the_new_set_carries_it() -> None:
    # tokens.refresh() copies the old refresh token when the AS sends none; nothing is removed.
    old = secret(make_tokens())
    patch = data_patch(old, token_data(make_tokens(access="at-2")), TOKEN_KEYS)
    assert "refresh_token" not in patch


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, 10.0), (2, 20.0), (3, 40.0), (6, 300.0), (60, 300.0)],
)
def test_backoff_doubles_up_to_the_ceiling(attempts: int, expected: float) -> None:
    assert backoff(attempts, base=10, ceiling=300) == expected
