"""Single-use authorize links in the shared Redis: stored when minted, taken exactly once.

A link token is 32 random bytes (base64url); Redis keys carry only its SHA-256, so a key read out
of Redis gives no usable link. `take` is one Lua script doing GETDEL and, on success, writing a
tombstone, so a second use is told apart (`LinkReplayed`) from a token never minted or long gone
(`LinkUnknown`). Records live `grace` seconds past their validity so a late use reports
`LinkExpired`; the expiry itself is decided by `callback_service.links` from the stored deadline.
Redis failures raise `StateStoreUnavailable`: no in-process fallback, as for flow records.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from typing import Final, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from callback_service.errors import ServiceError
from mcpgw_core.api import Reason
from mcpgw_core.redis_link import RedisLink
from mcpgw_core.state_store import bounded

LINK_TOKEN_BYTES: Final = 32
LINK_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
DEFAULT_GRACE_SECONDS: Final = 600

_T = TypeVar("_T")


class LinkGrant(BaseModel):
    """Who a link was minted for, for which gateway, and until when (epoch seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    gateway: str
    expires_at: float


class LinkStoreApi(Protocol):
    """What `callback_service.links` needs; unit tests hold grants in a dict."""

    async def put(self, token: str, grant: LinkGrant, ttl: float) -> None: ...

    async def take(self, token: str) -> LinkGrant: ...


def new_link_token() -> str:
    """A fresh, unguessable link token (43 base64url characters)."""
    return secrets.token_urlsafe(LINK_TOKEN_BYTES)


def link_rejected(reason: str, message: str) -> ServiceError:
    return ServiceError(401, reason, message)


class LinkStore:
    """Put and atomically take link grants in a shared Redis."""

    def __init__(
        self,
        link: RedisLink,
        *,
        key_prefix: str,
        timeout: float,
        grace: int = DEFAULT_GRACE_SECONDS,
    ) -> None:
        self._link = link
        self._prefix = key_prefix
        self._timeout = timeout
        self._grace = grace

    async def put(self, token: str, grant: LinkGrant, ttl: float) -> None:
        """Store `grant` under `token` for `ttl` seconds plus the grace; never overwrites."""
        key = self._key("link:", token)
        ttl_seconds = math.ceil(ttl) + self._grace
        stored = await bounded(
            self._link.put_new(key, grant.model_dump_json(), ttl_seconds), self._timeout
        )
        if not stored:
            # 256 random bits never collide; this means a caller reused a token.
            raise ValueError("a link with this token already exists")

    async def take(self, token: str) -> LinkGrant:
        """Remove and return the grant for `token`, once; `ServiceError` 401 otherwise."""
        if not LINK_TOKEN_RE.fullmatch(token):
            # Not one of ours: no need to ask Redis.
            raise link_rejected(Reason.LINK_UNKNOWN, "the authorize link is not valid")
        taken = await bounded(
            self._link.take_once(
                self._key("link:", token), self._key("link-used:", token), self._grace * 2
            ),
            self._timeout,
        )
        if taken.value is not None:
            return _decode(taken.value)
        if taken.replayed:
            raise link_rejected(
                Reason.LINK_REPLAYED, "the authorize link was already used; links work once"
            )
        raise link_rejected(
            Reason.LINK_UNKNOWN, "no such authorize link (never minted, or long expired)"
        )

    def _key(self, kind: str, token: str) -> str:
        # Hash tag: grant and tombstone share a Redis Cluster slot, as the script requires.
        return f"{self._prefix}{kind}{{{hashlib.sha256(token.encode('ascii')).hexdigest()}}}"


def _decode(raw: object) -> LinkGrant:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        data = json.loads(text)
        return LinkGrant.model_validate(data)
    except (ValueError, TypeError, ValidationError):
        raise link_rejected(
            Reason.LINK_UNKNOWN, "the stored authorize link is unreadable"
        ) from None
