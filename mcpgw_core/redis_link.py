"""A lean path to Redis for the state store: redis-py connections without the client layers.

Why not `redis.asyncio.Redis`: on this project's hot path (two commands per authorization flow)
its per-command machinery (pool checkout checks, retry wrapper, metrics hooks, a `wait_for` task
per write when a socket timeout is set) cost about 270 us of client CPU per create + consume on
the project's 2-core machine, against about 200 us here. redis-py still owns the protocol, URL
parsing, AUTH/SELECT and TLS (its `Connection` classes); this module only keeps idle
connections in a LIFO list and sends one command at a time on each.

Deliberately absent: retries (a consume whose reply was lost must not run twice) and per-socket
timeouts (callers bound each whole operation with `asyncio.timeout`). A connection that fails or
is cancelled mid-command is closed, never reused, so a late reply cannot answer the next command.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Final

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

DEFAULT_MAX_CONNECTIONS: Final = 64


class RedisLink:
    """Up to `max_connections` redis-py connections, each carrying one command at a time."""

    def __init__(self, factory: ConnectionPool, *, max_connections: int) -> None:
        # The pool is used only as a connection factory holding the parsed URL settings.
        self._factory = factory
        self._idle: list[AbstractConnection] = []
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
        `ca_file` is the CA to verify a `rediss://` server with (plain connections take none)."""
        tls = {"ssl_ca_certs": ca_file} if ca_file and url.startswith("rediss://") else {}
        factory = ConnectionPool.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=None,
            # RESP2 parses faster in pure Python, and nothing here needs RESP3 types.
            protocol=2,
            **tls,
        )
        return cls(factory, max_connections=max_connections)

    async def command(self, *args: Any) -> Any:
        """Send one command and return its parsed reply; redis-py exceptions pass through."""
        async with self._slots:
            conn = await self._checkout()
            try:
                await conn.send_packed_command(conn.pack_command(*args), check_health=False)
                reply = await conn.read_response()
            except BaseException:
                await conn.disconnect(nowait=True)
                raise
            self._idle.append(conn)
            return reply

    async def run_script(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, falling back to EVAL once when Redis lost its script cache (a restart)."""
        try:
            return await self.command("EVALSHA", script.sha1, len(keys), *keys, *args)
        except NoScriptError:
            return await self.command("EVAL", script.source, len(keys), *keys, *args)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()

    async def _checkout(self) -> AbstractConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected and not await _is_stale(conn):
                return conn
            await conn.disconnect(nowait=True)
        fresh: AbstractConnection = self._factory.make_connection()  # type: ignore[no-untyped-call]
        await fresh.connect()  # type: ignore[no-untyped-call]
        return fresh


class LuaScript:
    """A Lua script and its SHA1, as EVALSHA wants it."""

    def __init__(self, source: str) -> None:
        self.source = source
        # SHA1 is what Redis names scripts by; this is not a security use.
        self.sha1 = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()


async def _is_stale(conn: AbstractConnection) -> bool:
    """An idle connection with anything to read was closed by Redis or carries a stray reply."""
    try:
        return bool(await conn.can_read())
    except (OSError, RedisConnectionError):
        return True


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
