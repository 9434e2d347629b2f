"""The RESP2 packer and parser, and Redis URLs, without a server."""

from __future__ import annotations

import pytest
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError

from mcpgw_core.resp import Endpoint, _Incomplete, pack, parse


def test_pack_sends_bulk_strings() -> None:
    assert pack(("SET", "k", b"v", 5)) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\n5\r\n"


def test_pack_refuses_what_redis_cannot_take() -> None:
    with pytest.raises(TypeError, match="NoneType"):
        pack(("SET", None))


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        pytest.param(b"+OK\r\n", "OK", id="simple"),
        pytest.param(b":42\r\n", 42, id="integer"),
        pytest.param(b"$3\r\nabc\r\n", b"abc", id="bulk"),
        pytest.param(b"$-1\r\n", None, id="nil"),
        pytest.param(b"*2\r\n:1\r\n$2\r\nhi\r\n", [1, b"hi"], id="array"),
        pytest.param(b"*1\r\n:2\r\n", [2], id="replayed-shape"),
    ],
)
def test_parse_reply_types(wire: bytes, value: object) -> None:
    assert parse(bytearray(wire)) == (value, len(wire))


@pytest.mark.parametrize(
    ("wire", "kind"),
    [
        pytest.param(b"-NOSCRIPT No matching script\r\n", NoScriptError, id="noscript"),
        pytest.param(b"-WRONGPASS invalid password\r\n", AuthenticationError, id="auth"),
        pytest.param(b"-ERR syntax\r\n", ResponseError, id="other"),
    ],
)
def test_parse_errors_become_redis_exceptions(wire: bytes, kind: type[Exception]) -> None:
    value, _ = parse(bytearray(wire))
    assert isinstance(value, kind)


@pytest.mark.parametrize(
    "wire",
    [b"", b"+OK", b"$5\r\nab", b"*2\r\n:1\r\n"],
    ids=["empty", "no-crlf", "short-bulk", "short-array"],
)
def test_parse_waits_for_a_whole_reply(wire: bytes) -> None:
    with pytest.raises(_Incomplete):
        parse(bytearray(wire))


def test_endpoint_from_urls() -> None:
    full = Endpoint.from_url("rediss://user:p%40ss@redis.example:6380/2")
    assert (full.host, full.port, full.db, full.tls) == ("redis.example", 6380, 2, True)
    assert (full.username, full.password) == ("user", "p@ss")
    plain = Endpoint.from_url("redis://127.0.0.1")
    assert (plain.port, plain.db, plain.tls, plain.password) == (6379, 0, False, None)
    unix = Endpoint.from_url("unix:///run/redis.sock?db=4")
    assert (unix.path, unix.db) == ("/run/redis.sock", 4)
    with pytest.raises(ValueError, match="must start with"):
        Endpoint.from_url("http://127.0.0.1")
