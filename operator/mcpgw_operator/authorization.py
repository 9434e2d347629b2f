"""The `Authorized` condition and token expiry of a gateway, derived from its token Secrets.

`observe` makes one LIST call; `evaluate` is pure (takes `now`), and its messages carry counts
and error codes only, never timestamps, so an idle reconcile writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcpgw_core.api import ConditionStatus, Reason
from mcpgw_core.kube import Kube, core_path
from mcpgw_core.redact import strip_control
from mcpgw_core.token_secrets import (
    REFRESH_ERROR_ANNOTATION,
    USER_ANNOTATION,
    TokenSecretInvalid,
    parse_token_set,
    rfc3339,
    token_selector,
)
from mcpgw_core.tokens import TokenSet
from mcpgw_operator.decide import AuthorizationView, ConditionValue

JSON = dict[str, Any]
AUTHORIZE_HINT = "open the URL in status.authorization.authorizeURL"
_ERROR_CODE_LIMIT = 64


@dataclass(frozen=True)
class StoredTokens:
    """One token Secret as the operator reads it; `tokens` is None when it does not parse."""

    name: str
    user: str
    tokens: TokenSet | None
    refresh_error: str | None = None

    def usable(self, now: datetime) -> bool:
        """An access token still valid, or a refresh token not known to be dead."""
        if self.tokens is None or self.refresh_error:
            return False
        expired = self.tokens.expires_at is not None and self.tokens.expires_at <= now
        return not expired or bool(self.tokens.refresh_token)


def stored_tokens(secret: JSON) -> StoredTokens:
    meta = secret.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    try:
        tokens: TokenSet | None = parse_token_set(secret)
    except TokenSecretInvalid:
        tokens = None
    return StoredTokens(
        name=str(meta.get("name", "")),
        user=str(annotations.get(USER_ANNOTATION, "")),
        tokens=tokens,
        refresh_error=_error_code(annotations.get(REFRESH_ERROR_ANNOTATION)),
    )


def _error_code(raw: object) -> str | None:
    """The annotation is writable by anyone who may edit the Secret; it reaches status."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    code = strip_control(raw.strip())[:_ERROR_CODE_LIMIT]
    return code if code.isascii() else "unreadable-error"


def _users(count: int) -> str:
    return f"{count} user" + ("" if count == 1 else "s")


def _earliest(sets: Sequence[StoredTokens]) -> str | None:
    expiries = [s.tokens.expires_at for s in sets if s.tokens and s.tokens.expires_at]
    return rfc3339(min(expiries)) if expiries else None


def evaluate(token_sets: Sequence[StoredTokens], now: datetime) -> AuthorizationView:
    """`Authorized` from the stored token sets: True when at least one user's set is usable."""
    if not token_sets:
        return AuthorizationView(
            ConditionValue(
                ConditionStatus.FALSE,
                Reason.AWAITING_AUTHORIZATION,
                f"No user has authorized yet; {AUTHORIZE_HINT}",
            ),
            users_authorized=0,
            token_expires_at=None,
        )
    usable = [s for s in token_sets if s.usable(now)]
    failed = [s for s in token_sets if s.refresh_error]
    if usable:
        message = f"Tokens are stored for {_users(len(usable))}"
        if failed:
            message += f"; refreshing failed for {_users(len(failed))}"
        return AuthorizationView(
            ConditionValue(ConditionStatus.TRUE, Reason.AUTHORIZED, message),
            users_authorized=len(usable),
            token_expires_at=_earliest(usable),
        )
    if failed:
        codes = ", ".join(sorted({str(s.refresh_error) for s in failed}))
        value = ConditionValue(
            ConditionStatus.FALSE,
            Reason.REFRESH_FAILED,
            f"Refreshing the tokens of {_users(len(failed))} failed: the authorization server "
            f"answered {codes}; authorize again: {AUTHORIZE_HINT}",
        )
    elif any(s.tokens is None for s in token_sets):
        value = ConditionValue(
            ConditionStatus.FALSE,
            Reason.TOKEN_EXPIRED,
            f"The token Secrets of {_users(len(token_sets))} hold no usable token set; "
            f"authorize again: {AUTHORIZE_HINT}",
        )
    else:
        value = ConditionValue(
            ConditionStatus.FALSE,
            Reason.TOKEN_EXPIRED,
            f"The access tokens of {_users(len(token_sets))} expired and no refresh token is "
            f"stored; authorize again: {AUTHORIZE_HINT}",
        )
    return AuthorizationView(value, users_authorized=0, token_expires_at=_earliest(token_sets))


async def observe(kube: Kube, body: JSON, now: datetime) -> AuthorizationView:
    """List the gateway's token Secrets (one request) and evaluate them."""
    meta = body["metadata"]
    secrets = await kube.list_items(
        core_path("secrets", meta["namespace"]), label_selector=token_selector(meta["name"])
    )
    return evaluate([stored_tokens(s) for s in secrets], now)
