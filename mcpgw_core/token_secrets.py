"""The token Secret per (gateway, user): its name, labels, annotations, manifest and parsing.

A contract between the callback service (which writes a Secret when a user authorizes) and the
operator (which lists them to derive `Authorized` and refreshes them): labels
`mcpgw.dev/gateway=<gateway>` and `mcpgw.dev/role=token`; annotation `mcpgw.dev/user`; data keys
`access_token`, `token_type`, `refresh_token` and `id_token` (when issued), `scope` (when known),
`expires_at` and `obtained_at` (RFC 3339). The operator adds annotations of its own:
`refresh-error` (a definite refresh failure: the AS's error code), `refresh-lease` (who refreshes
right now, until when) and honours `refresh-requested` (set by anyone to force a refresh now).
Everything here is pure, so both components share one definition.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from mcpgw_core.api import GROUP, KIND, VERSION
from mcpgw_core.tokens import TokenSet

JSON = dict[str, Any]
GATEWAY_LABEL: Final = f"{GROUP}/gateway"
ROLE_LABEL: Final = f"{GROUP}/role"
TOKEN_ROLE: Final = "token"  # noqa: S105 - a label value, not a credential
USER_ANNOTATION: Final = f"{GROUP}/user"
REFRESH_REQUESTED_ANNOTATION: Final = f"{GROUP}/refresh-requested"
REFRESH_ERROR_ANNOTATION: Final = f"{GROUP}/refresh-error"
REFRESH_LEASE_ANNOTATION: Final = f"{GROUP}/refresh-lease"
TOKEN_KEYS: Final = (
    "access_token",
    "token_type",
    "refresh_token",
    "id_token",
    "scope",
    "expires_at",
    "obtained_at",
)
_NAME_INFIX: Final = "-oauth-token-"
_MAX_NAME: Final = 253


class TokenSecretInvalid(ValueError):
    """A token Secret whose data does not parse into a token set (never carries its values)."""


def token_secret_name(gateway: str, user: str) -> str:
    """Deterministic, so a second authorization by the same user replaces the first."""
    suffix = _NAME_INFIX + hashlib.sha256(user.encode("utf-8")).hexdigest()[:10]
    # A DNS subdomain may not end in '-' or '.', which a cut gateway name could.
    return gateway[: _MAX_NAME - len(suffix)].rstrip("-.") + suffix


def token_selector(gateway: str) -> str:
    """The label selector listing one gateway's token Secrets."""
    return f"{GATEWAY_LABEL}={gateway},{ROLE_LABEL}={TOKEN_ROLE}"


def token_data(tokens: TokenSet) -> dict[str, str]:
    """The Secret `data` (base64 values) holding `tokens`; absent values have no key."""
    values = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token,
        "scope": tokens.scope,
        "expires_at": rfc3339(tokens.expires_at),
        "obtained_at": rfc3339(tokens.obtained_at),
    }
    return {
        key: base64.b64encode(value.encode("utf-8")).decode("ascii")
        for key, value in values.items()
        if value
    }


def token_secret(
    *, namespace: str, gateway: str, gateway_uid: str, user: str, tokens: TokenSet
) -> JSON:
    """The Secret manifest holding `tokens`, owned by the gateway so it goes when it goes."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": token_secret_name(gateway, user),
            "namespace": namespace,
            "labels": {
                GATEWAY_LABEL: gateway,
                ROLE_LABEL: TOKEN_ROLE,
                "app.kubernetes.io/managed-by": "mcpgw-callback",
            },
            "annotations": {USER_ANNOTATION: user},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": gateway,
                    "uid": gateway_uid,
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": token_data(tokens),
    }


def read_token_set(secret: JSON) -> TokenSet:
    """Parse a token Secret back into a `TokenSet` (raises pydantic's ValidationError)."""
    data = {
        key: base64.b64decode(value).decode("utf-8")
        for key, value in (secret.get("data") or {}).items()
    }
    return TokenSet.model_validate({key: data.get(key) for key in TOKEN_KEYS if data.get(key)})


def parse_token_set(secret: JSON) -> TokenSet:
    """Like `read_token_set`, but every malformation is one exception type without values."""
    try:
        return read_token_set(secret)
    except (ValidationError, binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        # pydantic's messages can quote the input, which holds tokens: drop them.
        raise TokenSecretInvalid("the token Secret's data is not a valid token set") from None


def rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
