"""`Authorized` and token expiry from token Secrets: the pure evaluation, and reading a Secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcpgw_core.api import ConditionStatus, Reason
from mcpgw_core.token_secrets import REFRESH_ERROR_ANNOTATION, token_secret
from mcpgw_core.tokens import TokenSet
from mcpgw_operator.authorization import StoredTokens, evaluate, stored_tokens

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


def make_tokens(
    *, expires_in: float | None = 300, refresh: bool = True, access: str = "at-1"
) -> TokenSet:
    return TokenSet(
        access_token=access,
        refresh_token="rt-1" if refresh else None,
        expires_at=None if expires_in is None else NOW + timedelta(seconds=expires_in),
        obtained_at=NOW - timedelta(seconds=10),
    )


def stored(
    user: str = "alice",
    error: str | None = None,
    *,
    expires_in: float | None = 300,
    refresh: bool = True,
) -> StoredTokens:
    tokens = make_tokens(expires_in=expires_in, refresh=refresh)
    return StoredTokens(f"gw-oauth-token-{user}", user, tokens, error)


def test_no_token_secret_awaits_authorization_and_points_at_the_authorize_url() -> None:
    view = evaluate([], NOW)
    assert (view.authorized.status, view.authorized.reason) == (
        FALSE,
        Reason.AWAITING_AUTHORIZATION,
    )
    assert "status.authorization.authorizeURL" in view.authorized.message
    assert view.users_authorized == 0
    assert view.token_expires_at is None


@pytest.mark.parametrize(
    "token_args",
    [
        pytest.param({"expires_in": 300}, id="valid-access-token"),
        pytest.param({"expires_in": -300}, id="expired-but-refreshable"),
        pytest.param({"expires_in": 300, "refresh": False}, id="valid-no-refresh-token"),
        pytest.param({"expires_in": None, "refresh": False}, id="no-expiry-known"),
    ],
)
def test_a_usable_token_set_authorizes(token_args: dict[str, Any]) -> None:
    view = evaluate([stored(**token_args)], NOW)
    assert (view.authorized.status, view.authorized.reason) == (TRUE, Reason.AUTHORIZED)
    assert view.authorized.message == "Tokens are stored for 1 user"
    assert view.users_authorized == 1


def test_expiry_is_the_earliest_among_usable_sets_and_the_message_has_no_time() -> None:
    sets = [stored("alice", expires_in=900), stored("bob", expires_in=120), stored("carol")]
    view = evaluate(sets, NOW)
    assert view.token_expires_at == "2025-03-04T05:08:07Z"
    assert view.users_authorized == 3
    # The same input a minute later: the message (what decides a status write) is unchanged.
    later = evaluate(sets, NOW + timedelta(minutes=1))
    assert later.authorized == view.authorized


def test_all_expired_without_refresh_tokens_is_token_expired() -> None:
    sets = [
        stored("alice", expires_in=-1, refresh=False),
        stored("bob", expires_in=-60, refresh=False),
    ]
    view = evaluate(sets, NOW)
    assert (view.authorized.status, view.authorized.reason) == (FALSE, Reason.TOKEN_EXPIRED)
    assert "2 users" in view.authorized.message
    assert view.users_authorized == 0
    assert view.token_expires_at == "2025-03-04T05:05:07Z"


def test_expiry_exactly_now_counts_as_expired() -> None:
    view = evaluate([stored(expires_in=0, refresh=False)], NOW)
    assert view.authorized.reason == Reason.TOKEN_EXPIRED


def test_a_recorded_refresh_failure_is_refresh_failed_with_the_as_error_code() -> None:
    # The access token is still valid: a revoked grant is not usable regardless.
    view = evaluate([stored(error="invalid_grant", expires_in=600)], NOW)
    assert (view.authorized.status, view.authorized.reason) == (FALSE, Reason.REFRESH_FAILED)
    assert "invalid_grant" in view.authorized.message
    assert view.users_authorized == 0


def test_one_usable_user_keeps_the_gateway_authorized_and_mentions_the_failure() -> None:
    view = evaluate([stored("alice", error="invalid_grant"), stored("bob")], NOW)
    assert (view.authorized.status, view.authorized.reason) == (TRUE, Reason.AUTHORIZED)
    assert view.authorized.message == "Tokens are stored for 1 user; refreshing failed for 1 user"
    assert view.users_authorized == 1


def test_an_unreadable_secret_alone_is_not_authorized() -> None:
    view = evaluate([StoredTokens("gw-oauth-token-x", "x", None)], NOW)
    assert (view.authorized.status, view.authorized.reason) == (FALSE, Reason.TOKEN_EXPIRED)


def manifest(tokens: TokenSet, annotations: dict[str, str] | None = None) -> dict[str, object]:
    secret = token_secret(
        namespace="ns", gateway="gw", gateway_uid="u", user="alice", tokens=tokens
    )
    secret["metadata"]["annotations"].update(annotations or {})
    return secret


def test_stored_tokens_reads_the_callback_contract() -> None:
    tokens = make_tokens()
    read = stored_tokens(manifest(tokens))
    assert read.user == "alice"
    assert read.tokens == tokens
    assert read.refresh_error is None


def test_stored_tokens_survives_garbage_data_without_quoting_it() -> None:
    secret = manifest(make_tokens())
    secret["data"] = {"access_token": "!!not-base64!!", "expires_at": "bm90LWEtZGF0ZQ=="}
    assert stored_tokens(secret).tokens is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("invalid_grant", "invalid_grant", id="plain"),
        pytest.param("bad\nline", "bad line", id="control-characters"),
        pytest.param("x" * 500, "x" * 64, id="capped"),
        pytest.param("caf\u00e9", "unreadable-error", id="non-ascii"),
        pytest.param("  ", None, id="blank"),
    ],
)
def test_the_error_annotation_is_sanitized_before_it_reaches_status(
    raw: str, expected: str | None
) -> None:
    secret = manifest(make_tokens(), {REFRESH_ERROR_ANNOTATION: raw})
    assert stored_tokens(secret).refresh_error == expected
