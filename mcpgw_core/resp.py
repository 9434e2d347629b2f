"""A minimal RESP2 connection to Redis: one command at a time, nothing between it and the socket.

The state store's hot path is two commands per authorization flow; going through redis-py's
connection and parser classes cost more client CPU than the round trips themselves on the
project's 2-core machine. This module only packs commands, parses the five RESP2 reply types
and keeps one request in flight per connection. redis-py's exception types are raised, so
callers handle one family of errors whichever path they use.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.exceptions import (
    AuthenticationError,
    NoScriptError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

_CRLF = b"\r\n"
_MAX_BULK = 512 * 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, from a `redis://`, `rediss://` or `unix://` URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("Redis URL must start with redis://, rediss:// or unix://")
        query = parse_qs(parts.query)
        db_text = (query.get("db") or [parts.path.lstrip("/") if parts.scheme != "unix" else ""])[0]
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            path=parts.path if parts.scheme == "unix" else None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            db=int(db_text) if db_text else 0,
            tls=parts.scheme == "rediss",
        )


def pack(args: tuple[Any, ...]) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode("utf-8")
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            data = repr(arg).encode("ascii")
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    """The buffer does not hold a whole reply yet."""


def _error(message: str) -> RedisError:
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    if message.startswith(("NOAUTH", "WRONGPASS")):
        return AuthenticationError(message)
    return ResponseError(message)


def parse(buf: bytearray, pos: int = 0) -> tuple[Any, int]:
    """One reply from `buf` at `pos`: (value, position after it). Errors come back as values."""
    end = buf.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buf[pos], bytes(buf[pos + 1 : end]), end + 2
    if kind == 0x2B:  # + simple string
        return line.decode("utf-8", "replace"), pos
    if kind == 0x2D:  # - error
        return _error(line.decode("utf-8", "replace")), pos
    if kind == 0x3A:  # : integer
        return int(line), pos
    if kind == 0x24:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, pos
        if size > _MAX_BULK:
            raise RedisConnectionError("reply larger than the protocol allows")
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + size]), pos + size + 2
    if kind == 0x2A:  # * array
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    raise RedisConnectionError(f"unexpected RESP type byte {kind!r}")


class RespConnection(asyncio.Protocol):
    """One connection carrying one command at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Any] | None = None
        self._closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:
            # Nothing was asked: a stray reply means this connection can no longer be trusted.
            self.close()
            return
        try:
            value, used = parse(self._buffer)
        except _Incomplete:
            return
        except (RedisConnectionError, ValueError) as exc:
            self._fail(RedisConnectionError(f"malformed reply from Redis: {exc}"))
            return
        del self._buffer[:used]
        waiter, self._waiter = self._waiter, None
        if self._buffer:
            self.close()
        if not waiter.done():
            waiter.set_result(value)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._fail(RedisConnectionError("connection to Redis lost"))

    # ours
    @property
    def usable(self) -> bool:
        return not self._closed and self._waiter is None and not self._buffer

    async def call(self, *args: Any) -> Any:
        if not self.usable or self._transport is None:
            raise RedisConnectionError("connection to Redis is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(pack(args))
        value = await self._waiter
        if isinstance(value, RedisError):
            raise value
        return value

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()
        self._fail(RedisConnectionError("connection to Redis closed"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


async def connect(
    endpoint: Endpoint, *, connect_timeout: float, ssl_context: ssl.SSLContext | None
) -> RespConnection:
    """Open, authenticate and select the database, all within `connect_timeout`."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(connect_timeout):
            if endpoint.path is not None:
                _, conn = await loop.create_unix_connection(RespConnection, endpoint.path)
            else:
                _, conn = await loop.create_connection(
                    RespConnection,
                    endpoint.host,
                    endpoint.port,
                    ssl=ssl_context if endpoint.tls else None,
                )
            if endpoint.password is not None:
                auth = (endpoint.username, endpoint.password) if endpoint.username else ()
                await conn.call("AUTH", *(auth or (endpoint.password,)))
            if endpoint.db:
                await conn.call("SELECT", endpoint.db)
    except TimeoutError:
        raise RedisConnectionError(
            f"connecting to Redis timed out after {connect_timeout:g} s"
        ) from None
    except OSError as exc:
        raise RedisConnectionError(f"cannot connect to Redis: {exc.strerror or exc}") from exc
    return conn
