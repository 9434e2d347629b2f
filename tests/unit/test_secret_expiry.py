"""A dynamically registered client is replaced before its secret expires (RFC 7591)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mcpgw_operator.registrar import SECRET_RENEWAL_MARGIN_SECONDS, secret_expiring

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_at", "expected"),
    [
        pytest.param(None, False, id="absent-never-expires"),
        pytest.param(0, False, id="zero-never-expires"),
        pytest.param(NOW.timestamp() + 2 * SECRET_RENEWAL_MARGIN_SECONDS, False, id="far-off"),
        pytest.param(NOW.timestamp() + SECRET_RENEWAL_MARGIN_SECONDS - 1, True, id="within-margin"),
        pytest.param(NOW.timestamp() - 1, True, id="already-expired"),
    ],
)
def test_secret_expiring(expires_at: float | None, expected: bool) -> None:
    assert secret_expiring({"secretExpiresAt": expires_at}, NOW) is expected


def test_expired_without_margin_only_once_past() -> None:
    soon = {"secretExpiresAt": NOW.timestamp() + 60}
    assert secret_expiring(soon, NOW)
    assert not secret_expiring(soon, NOW, margin=0)
