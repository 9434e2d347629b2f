"""The shared Redis store of in-flight authorization flows: one record per state, single use.

Keys are `<prefix>flow:{<sha256(nonce)>}`: the nonce travels in the `state`, but a key read out of
Redis (or its logs) gives neither the nonce nor, without the HMAC key, a usable state.

Round trips: `create` is one `SET key value EX ttl NX`; `consume` is one Lua script that does
GETDEL and, on success, writes the tombstone `<prefix>consumed:{<sha256(nonce)>}` atomically. So a
flow costs exactly two round trips. The tombstone lets a second use report `StateReplayed` (the
user refreshed the callback page, or an attacker replays a leaked URL) while a record that was
never stored, expired, or was lost with a Redis restart reports `StateUnknown`. Expiry proper is
decided before Redis from the state's signed issue time (`mcpgw_core.state`); the record lives
`expiry_grace` seconds longer than the state so that a state accepted at the last moment still
finds its record.

Redis unreachable, timing out or refusing writes raises `StateStoreUnavailable` (fail closed):
there is no in-process fallback, since another replica could never see such a record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import RedisError

from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.errors import OAuthError
from mcpgw_core.redis_link import RedisLink
from mcpgw_core.state import StateRejected

DEFAULT_KEY_PREFIX: Final = "mcpgw:"
DEFAULT_TOMBSTONE_TTL_SECONDS: Final = 600
DEFAULT_EXPIRY_GRACE_SECONDS: Final = 5
DEFAULT_REDIS_TIMEOUT_SECONDS: Final = 2.0

_T = TypeVar("_T")


class StateStoreUnavailable(OAuthError):
    """Redis could not be used; the flow fails closed with `StateStoreUnreachable`."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.STATE_STORE_UNREACHABLE, message, retryable=True)


class FlowRecord(BaseModel):
    """What the callback needs to finish a flow another replica may have started."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Not stored: it is the key's preimage and arrives with the state.
    nonce: str = Field(exclude=True)
    gateway: str
    user: str
    code_verifier: str = Field(repr=False)
    redirect_uri: str
    client_id: str
    created_at: float
    resource: str | None = None
    scope: str | None = None


class StateStore:
    """Create and atomically consume flow records in a shared Redis."""

    def __init__(
        self,
        link: RedisLink,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        tombstone_ttl: int = DEFAULT_TOMBSTONE_TTL_SECONDS,
        expiry_grace: int = DEFAULT_EXPIRY_GRACE_SECONDS,
        timeout: float = DEFAULT_REDIS_TIMEOUT_SECONDS,
    ) -> None:
        self._link = link
        self._prefix = key_prefix
        self._tombstone_ttl = tombstone_ttl
        self._expiry_grace = expiry_grace
        self._timeout = timeout

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = DEFAULT_REDIS_TIMEOUT_SECONDS,
        ca_file: str | None = None,
        **options: Any,
    ) -> StateStore:
        """A store with its own connections to `url`; every operation is bounded by `timeout`.
        `ca_file` verifies a `rediss://` server signed by a private CA."""
        link = RedisLink.from_url(url, connect_timeout=timeout, ca_file=ca_file)
        return cls(link, timeout=timeout, **options)

    @property
    def link(self) -> RedisLink:
        """The connections in use (for diagnostics and tests)."""
        return self._link

    async def create(self, record: FlowRecord, ttl: float) -> None:
        """Store `record` for `ttl` seconds (plus the grace); refuses to overwrite a live one."""
        key = self._key("flow:", record.nonce)
        ttl_seconds = math.ceil(ttl) + self._expiry_grace
        stored = await bounded(
            self._link.put_new(key, record.model_dump_json(), ttl_seconds), self._timeout
        )
        if not stored:
            # 128 random bits never collide; this means a caller reused a nonce.
            raise ValueError("a flow record for this nonce already exists")

    async def consume(self, nonce: str, *, expected_gateway: str | None = None) -> FlowRecord:
        """Take the record for `nonce` out of Redis, exactly once, or raise `StateRejected`.

        `expected_gateway` (the verified state's gateway) is compared with the record's as
        defence in depth; the record is consumed either way, so a mismatch cannot be retried.
        """
        taken = await bounded(
            self._link.take_once(
                self._key("flow:", nonce), self._key("consumed:", nonce), self._tombstone_ttl
            ),
            self._timeout,
        )
        if taken.value is not None:
            record = _decode(nonce, taken.value)
            if expected_gateway is not None and record.gateway != expected_gateway:
                raise StateRejected(
                    StateRejection.GATEWAY_MISMATCH, "the flow record belongs to another gateway"
                )
            return record
        if taken.replayed:
            raise StateRejected(
                StateRejection.REPLAYED,
                "state was already used (callback opened twice, or replayed)",
            )
        raise StateRejected(
            StateRejection.UNKNOWN,
            "no flow for this state (never stored, expired, or the store lost it)",
        )

    async def ping(self) -> None:
        """Raise `StateStoreUnavailable` unless Redis answers (for readiness probes)."""
        await bounded(self._link.command("PING"), self._timeout)

    async def aclose(self) -> None:
        await self._link.aclose()

    def record_key(self, nonce: str) -> str:
        """The Redis key of the record for `nonce` (for diagnostics and tests)."""
        return self._key("flow:", nonce)

    def _key(self, kind: str, nonce: str) -> str:
        # The braces are a Redis Cluster hash tag: record and tombstone share a slot, as a script
        # touching both requires.
        return f"{self._prefix}{kind}{{{hashlib.sha256(nonce.encode('utf-8')).hexdigest()}}}"


def _decode(nonce: str, raw: object) -> FlowRecord:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("record is not an object")
        return FlowRecord.model_validate({**data, "nonce": nonce})
    except (ValueError, TypeError, ValidationError):
        # Chaining would put the validation error, which quotes the code_verifier, in tracebacks.
        raise StateRejected(
            StateRejection.UNKNOWN, "the stored flow record is unreadable"
        ) from None


async def bounded(operation: Awaitable[_T], seconds: float) -> _T:
    """Await one Redis operation within `seconds`; any failure is `StateStoreUnavailable`.

    The link closes a connection whose command was cancelled, so no late reply is misread.
    Messages name the exception class only: Redis errors can carry commands and arguments.
    """
    try:
        async with asyncio.timeout(seconds):
            return await operation
    except TimeoutError:
        raise StateStoreUnavailable(f"Redis did not answer within {seconds:g} s") from None
    except RedisError as exc:
        raise StateStoreUnavailable(
            f"Redis is unreachable or refused the command ({type(exc).__name__})"
        ) from None
