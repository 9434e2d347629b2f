"""The OAuth `state` parameter: its signed compact encoding, strict parser and verifier.

Wire format (ASCII, at most `MAX_STATE_LENGTH` characters, seven dot-separated fields)::

    v1.<kid>.<iat>.<gateway>.<nonce>.<bind>.<mac>

- `kid`: id of the ring key that signed it (`[A-Za-z0-9_-]{1,32}`).
- `iat`: issue time, decimal UNIX seconds, so expiry is decided before Redis is touched.
- `gateway`: base64url of the gateway identity `namespace/name`, signed but in clear: after the
  signature holds, the service can tell a state minted for another gateway (`StateGatewayMismatch`)
  from a forged one.
- `nonce`: 16 random bytes; the Redis record of the flow is keyed by a hash of it.
- `bind`: HMAC-SHA256(key, "mcpgw-binding" | nonce | gateway | binding value), truncated to 16
  bytes. The binding value is the browser cookie set when the flow started and is never in the
  state; the verifier recomputes the tag from the cookie it receives.
- `mac`: HMAC-SHA256(key, "mcpgw-state" | every preceding character of the state).

Why two HMACs: one MAC over (nonce, gateway, binding) alone could not tell a forged state from a
genuine state completed in another browser, because both just fail the MAC. Here `mac` proves the
state is ours and unmodified (else `StateSignatureInvalid`); only then is `bind` compared, so a
mismatch there means precisely "genuine state, wrong browser" (`StateBindingMismatch`: the
forwarded-authorize-URL login CSRF of RFC 6749 sec. 10.12). `mac` covers `bind`, so the signature
still covers nonce, gateway identity and browser binding together.

Checks run cheapest and least trusting first, all before any Redis access: length, ASCII, field
count, version, each field's alphabet and canonical unpadded base64url with exact decoded sizes
(`StateMalformed`); known kid and `mac` in constant time (`StateSignatureInvalid`); age
(`StateExpired`); gateway (`StateGatewayMismatch`); binding tag in constant time
(`StateBindingMismatch`). Redis then decides unknown versus replayed (see `state_store`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final, Protocol

from mcpgw_core.api import StateRejection
from mcpgw_core.errors import OAuthError

STATE_VERSION: Final = "v1"
NONCE_BYTES: Final = 16
BIND_TAG_BYTES: Final = 16
MAC_BYTES: Final = 32
MAX_KID_LENGTH: Final = 32
# A namespace is a DNS label (63) and an object name a DNS subdomain (253), plus the slash.
MAX_GATEWAY_LENGTH: Final = 63 + 1 + 253
# Room for the longest legal state (562 characters) and nothing much beyond it.
MAX_STATE_LENGTH: Final = 600
# Replicas' clocks differ a little; a state from a few seconds "in the future" is still ours.
MAX_CLOCK_SKEW_SECONDS: Final = 30

KID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_IAT_RE: Final = re.compile(r"[1-9][0-9]{0,11}")
_B64_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_GATEWAY_RE: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?"
)
_MAC_DOMAIN: Final = b"mcpgw-state\x00"
_BIND_DOMAIN: Final = b"mcpgw-binding\x00"


class StateRejected(OAuthError):
    """A `state` parameter was refused; `reason` is one of `StateRejection`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message, retryable=False)


class StateKeys(Protocol):
    """What signing and verifying need from a key ring."""

    def signing_key(self) -> tuple[str, bytes]:
        """The `(kid, key)` that signs new states."""
        ...

    def verification_key(self, kid: str) -> bytes | None:
        """The key for `kid`, or None when the ring does not hold it (any more)."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedState:
    """A freshly signed state and the values the flow record needs."""

    state: str
    nonce: str
    kid: str
    issued_at: int


@dataclass(frozen=True, slots=True)
class VerifiedState:
    """The signed contents of a state that passed every check."""

    nonce: str
    kid: str
    gateway: str
    issued_at: int


def make_binding_value() -> str:
    """A fresh browser-binding value for the HttpOnly cookie (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_gateway_identity(gateway: str) -> bool:
    """Whether `gateway` is a well-formed `namespace/name`."""
    return len(gateway) <= MAX_GATEWAY_LENGTH and _GATEWAY_RE.fullmatch(gateway) is not None


def sign_state(keys: StateKeys, *, gateway: str, binding: str, now: float) -> IssuedState:
    """Mint a state for `gateway`, bound to the browser holding `binding`, issued at `now`."""
    if not is_gateway_identity(gateway):
        raise ValueError(f"gateway identity must be 'namespace/name', got {gateway!r}")
    if not binding:
        raise ValueError("the browser binding value must not be empty")
    kid, key = keys.signing_key()
    nonce = secrets.token_bytes(NONCE_BYTES)
    issued_at = int(now)
    signed = ".".join(
        (
            STATE_VERSION,
            kid,
            str(issued_at),
            _b64encode(gateway.encode("ascii")),
            _b64encode(nonce),
            _b64encode(_bind_tag(key, nonce, gateway, binding)),
        )
    )
    state = f"{signed}.{_b64encode(_mac(key, signed))}"
    return IssuedState(state=state, nonce=_b64encode(nonce), kid=kid, issued_at=issued_at)


def verify_state(
    keys: StateKeys,
    state: str,
    *,
    binding: str | None,
    now: float,
    max_age: float,
    expected_gateway: str | None = None,
) -> VerifiedState:
    """Check `state` fully (see the module docstring for the order) or raise `StateRejected`.

    `binding` is the cookie value the callback received (None when the cookie is absent).
    `expected_gateway` is given when the callback knows which gateway it serves.
    """
    fields = _parse(state)
    kid, iat_text, gateway_b64, nonce_b64, bind_b64, mac_b64 = fields
    key = keys.verification_key(kid)
    if key is None:
        raise StateRejected(
            StateRejection.SIGNATURE_INVALID,
            "state was signed with a key that is not in the key ring (rotated out or foreign)",
        )
    signed, _, _ = state.rpartition(".")
    if not hmac.compare_digest(_mac(key, signed), _b64decode(mac_b64, MAC_BYTES)):
        raise StateRejected(
            StateRejection.SIGNATURE_INVALID, "state signature is invalid (tampered or forged)"
        )
    issued_at = int(iat_text)
    if now - issued_at > max_age:
        raise StateRejected(StateRejection.EXPIRED, f"state is older than {max_age:g} s")
    if issued_at - now > MAX_CLOCK_SKEW_SECONDS:
        raise StateRejected(
            StateRejection.EXPIRED, "state was issued in the future (clock skew between replicas)"
        )
    gateway = _b64decode(gateway_b64, None).decode("ascii")
    if expected_gateway is not None and gateway != expected_gateway:
        raise StateRejected(StateRejection.GATEWAY_MISMATCH, "state was issued for another gateway")
    nonce = _b64decode(nonce_b64, NONCE_BYTES)
    expected_tag = _bind_tag(key, nonce, gateway, binding) if binding else None
    if expected_tag is None or not hmac.compare_digest(
        expected_tag, _b64decode(bind_b64, BIND_TAG_BYTES)
    ):
        raise StateRejected(
            StateRejection.BINDING_MISMATCH,
            "state belongs to a flow started in another browser (binding cookie differs or is"
            " missing)",
        )
    return VerifiedState(nonce=nonce_b64, kid=kid, gateway=gateway, issued_at=issued_at)


def _parse(state: object) -> tuple[str, str, str, str, str, str]:
    """Split and validate the structure; everything after the version, or `StateMalformed`."""
    if not isinstance(state, str) or not state:
        raise _malformed("state is missing")
    if len(state) > MAX_STATE_LENGTH:
        raise _malformed(f"state is longer than {MAX_STATE_LENGTH} characters")
    if not state.isascii():
        raise _malformed("state contains non-ASCII characters")
    parts = state.split(".")
    if len(parts) != 7:
        raise _malformed("state does not have exactly seven fields")
    version, kid, iat, gateway_b64, nonce_b64, bind_b64, mac_b64 = parts
    if version != STATE_VERSION:
        raise _malformed("state has an unknown version")
    if KID_RE.fullmatch(kid) is None:
        raise _malformed("state key id is not well-formed")
    if _IAT_RE.fullmatch(iat) is None:
        raise _malformed("state issue time is not well-formed")
    gateway = _b64decode(gateway_b64, None)
    if not is_gateway_identity(gateway.decode("ascii", errors="replace")):
        raise _malformed("state gateway identity is not well-formed")
    _b64decode(nonce_b64, NONCE_BYTES)
    _b64decode(bind_b64, BIND_TAG_BYTES)
    _b64decode(mac_b64, MAC_BYTES)
    return kid, iat, gateway_b64, nonce_b64, bind_b64, mac_b64


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str, size: int | None) -> bytes:
    """Decode canonical unpadded base64url of exactly `size` bytes (any size when None)."""
    if _B64_RE.fullmatch(text) is None or len(text) % 4 == 1:
        raise _malformed("state field is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise _malformed("state field is not unpadded base64url") from exc
    # Non-zero trailing bits decode fine but give a second spelling of the same bytes; refuse it
    # so every accepted state has exactly one text form.
    if _b64encode(raw) != text:
        raise _malformed("state field is not canonical base64url")
    if size is not None and len(raw) != size:
        raise _malformed("state field has the wrong length")
    return raw


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, _MAC_DOMAIN + signed.encode("ascii"), hashlib.sha256).digest()


def _bind_tag(key: bytes, nonce: bytes, gateway: str, binding: str) -> bytes:
    # Gateway identities never contain NUL, and the nonce has a fixed size, so this is unambiguous.
    message = _BIND_DOMAIN + nonce + gateway.encode("ascii") + b"\x00" + binding.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()[:BIND_TAG_BYTES]


def _malformed(message: str) -> StateRejected:
    return StateRejected(StateRejection.MALFORMED, message)
