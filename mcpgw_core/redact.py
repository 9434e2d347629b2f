"""Redaction of secret values from anything that may reach a log line, status, Event or error."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

REDACTED: Final = "[REDACTED]"
DEFAULT_LIMIT: Final = 200

# Field names whose values are credentials in OAuth, DCR (RFC 7591/7592) and our own Secrets.
SECRET_FIELDS: Final = frozenset(
    {
        "access_token",
        "assertion",
        "authorization",
        "client_assertion",
        "client_secret",
        "code",
        "code_verifier",
        "hmac_key",
        "id_token",
        "initial_access_token",
        "password",
        "refresh_token",
        "registration_access_token",
        "secret",
        "state",
        "token",
    }
)

_FIELD_ALTERNATION = "|".join(sorted((re.escape(f) for f in SECRET_FIELDS), key=len, reverse=True))
# `"client_secret": "v"` (JSON) and `client_secret=v` (form/query) written inside free text.
_JSON_PAIR = re.compile(rf'("(?:{_FIELD_ALTERNATION})"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)
_FORM_PAIR = re.compile(rf"\b((?:{_FIELD_ALTERNATION})=)[^&\s,;\"']+", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# Three base64url segments starting with a JSON header: a JWT, whoever it belongs to.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

# Secret values shorter than this are not substituted as substrings: a one-character
# "secret" would otherwise shred every message; such values are rejected elsewhere.
_MIN_SUBSTITUTED_LENGTH: Final = 4


def is_secret_field(name: str) -> bool:
    """True when a field of this name carries a credential."""
    return name.lower() in SECRET_FIELDS


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy with the value of every secret field replaced, recursing into containers."""
    return {
        key: REDACTED if is_secret_field(key) else _redact_value(value)
        for key, value in data.items()
    }


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def strip_control(text: str) -> str:
    """Replace control characters (newlines included) by one space, so a value stays one line."""
    return _CONTROL.sub(" ", text).strip()


def cap(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """Shorten `text` to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def redact_text(
    text: str, *, secrets: Iterable[str | None] = (), limit: int = DEFAULT_LIMIT
) -> str:
    """Make free text safe to show: known secret values and credential-shaped parts replaced,
    control characters removed and the length capped.

    `secrets` are values the caller knows it sent or received (an initial access token, a client
    secret); any occurrence of them is replaced even where no field name gives them away.
    """
    result = text
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= _MIN_SUBSTITUTED_LENGTH:
            result = result.replace(secret, REDACTED)
    result = _JSON_PAIR.sub(rf'\1"{REDACTED}"', result)
    result = _FORM_PAIR.sub(rf"\1{REDACTED}", result)
    result = _BEARER.sub(rf"\1 {REDACTED}", result)
    result = _JWT.sub(REDACTED, result)
    # Redact before capping: a cut could otherwise leave a secret's prefix unmatched.
    return cap(strip_control(result), limit)
