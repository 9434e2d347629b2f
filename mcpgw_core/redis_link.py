"""Connections to Redis for the state store and authorize links: one command at a time each.

Why not `redis.asyncio.Redis`: on this project's hot path (two commands per authorization flow)
its per-command machinery (pool checkout checks, retry wrapper, parser layers) cost more client
CPU than the round trips themselves on the project's 2-core machine. `mcpgw_core.resp` speaks
the protocol; this module keeps idle connections in a LIFO list, bounds how many are open, and
sends one command at a time on each.

Deliberately absent: retries (a consume whose reply was lost must not run twice) and per-socket
timeouts (callers bound each whole operation with `asyncio.timeout`). A connection that fails or
is cancelled mid-command is closed, never reused, so a late reply cannot answer the next command.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass
from typing import Any, Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from mcpgw_core.resp import Endpoint, RespConnection, connect

DEFAULT_MAX_CONNECTIONS: Final = 64


class RedisLink:
    """Up to `max_connections` connections, each carrying one command at a time."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        connect_timeout: float,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._idle: list[RespConnection] = []
        self._slots = asyncio.Semaphore(max_connections)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ca_file: str | None = None,
    ) -> RedisLink:
        """Connections for `url` (`redis://`, `rediss://` or `unix://`, with auth and db);
        `ca_file` is the CA to verify a `rediss://` server with (else the system's CAs)."""
        endpoint = Endpoint.from_url(url)
        context = ssl.create_default_context(cafile=ca_file) if endpoint.tls else None
        return cls(
            endpoint,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            ssl_context=context,
        )

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply; redis-py exception types are raised."""
        async with self._slots:
            conn = await self._checkout()
            try:
                reply = await conn.call(*args)
            except BaseException:
                conn.close()
                raise
            self._idle.append(conn)
            return reply

    async def run_script(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, falling back to EVAL once when Redis lost its script cache (a restart)."""
        try:
            return await self.command("EVALSHA", script.sha1, len(keys), *keys, *args)
        except NoScriptError:
            return await self.command("EVAL", script.source, len(keys), *keys, *args)

    async def put_new(self, key: str, value: str, ttl: int) -> bool:
        """SET with a TTL, only if `key` is absent: False when it already exists."""
        return bool(await self.command("SET", key, value, "EX", ttl, "NX"))

    async def take_once(self, key: str, tombstone: str, tombstone_ttl: int) -> Taken:
        """Take `key`'s value exactly once (TAKE_ONCE_SCRIPT): the value, or why there is none."""
        reply = await self.run_script(TAKE_ONCE_SCRIPT, [key, tombstone], [tombstone_ttl])
        outcome = reply[0] if isinstance(reply, list) and reply else None
        if outcome == 1 and len(reply) == 2 and isinstance(reply[1], bytes):
            return Taken(reply[1])
        if outcome == 2:
            return Taken(None, replayed=True)
        if outcome == 0:
            return Taken(None)
        raise RedisConnectionError("unexpected answer to the take-once script")

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _checkout(self) -> RespConnection:
        # An idle connection that Redis closed (restart, idle timeout) has seen its EOF: the
        # event loop keeps reading idle sockets, and a closed one is no longer `usable`.
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return await connect(
            self._endpoint, connect_timeout=self._connect_timeout, ssl_context=self._ssl
        )


@dataclass(frozen=True)
class Taken:
    """What `take_once` found: the value, or none because it was taken before (`replayed`) or
    never stored or expired."""

    value: bytes | None
    replayed: bool = False


class LuaScript:
    """A Lua script and its SHA1, as EVALSHA wants it."""

    def __init__(self, source: str) -> None:
        self.source = source
        # SHA1 is what Redis names scripts by; this is not a security use.
        self.sha1 = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()


# Take a value exactly once. KEYS[1] = value, KEYS[2] = tombstone; ARGV[1] = tombstone TTL.
# Returns {1, value} when taken now, {2} when taken before (the tombstone tells a replay from
# a value never stored or expired), {0} when never seen. One round trip, atomic in Redis.
TAKE_ONCE_SCRIPT: Final = LuaScript("""
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
  return {1, value}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {2}
end
return {0}
""")
