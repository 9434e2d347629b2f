"""The flow-record store against a real redis-server: single use, replay, expiry, fail closed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.keyring import KeyRing
from mcpgw_core.pkce import make_code_verifier
from mcpgw_core.state import StateRejected
from mcpgw_core.state_store import FlowRecord, StateStore, StateStoreUnavailable
from tests.support.redis_server import RedisServer, start_redis

pytestmark = pytest.mark.integration

TTL = 300.0
# Bounds every wait on a dead or frozen Redis; the store's own timeout is well below it.
STORE_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server this test alone kills and restarts."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


async def open_store(server: RedisServer, **options: int) -> StateStore:
    return StateStore.from_url(
        server.url, timeout=STORE_TIMEOUT, key_prefix=f"t-{uuid.uuid4().hex[:8]}:", **options
    )


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[StateStore]:
    opened = await open_store(redis_server)
    yield opened
    await opened.aclose()


def make_record(nonce: str | None = None, **overrides: object) -> FlowRecord:
    ring = KeyRing([("k1", bytes(32))])
    issued = ring.sign_state(gateway="ns/gw", binding="cookie", now=time.time())
    fields: dict[str, object] = {
        "nonce": nonce or issued.nonce,
        "gateway": "ns/gw",
        "user": "alice@example.com",
        "code_verifier": make_code_verifier(),
        "redirect_uri": "https://cb.example/oauth/callback",
        "client_id": "client-1",
        "created_at": time.time(),
        "resource": "https://mcp.example/mcp",
    }
    fields.update(overrides)
    return FlowRecord.model_validate(fields)


async def reason_of_consume(store: StateStore, nonce: str) -> str:
    with pytest.raises(StateRejected) as info:
        await store.consume(nonce)
    return info.value.reason


async def test_create_then_consume_returns_the_record(store: StateStore) -> None:
    record = make_record()
    await store.create(record, TTL)
    assert await store.consume(record.nonce) == record


async def test_record_of_another_gateway_is_a_gateway_mismatch(store: StateStore) -> None:
    record = make_record()
    await store.create(record, TTL)
    with pytest.raises(StateRejected) as info:
        await store.consume(record.nonce, expected_gateway="ns/other")
    assert info.value.reason == StateRejection.GATEWAY_MISMATCH
    assert await reason_of_consume(store, record.nonce) == StateRejection.REPLAYED


async def test_matching_gateway_passes(store: StateStore) -> None:
    record = make_record()
    await store.create(record, TTL)
    assert await store.consume(record.nonce, expected_gateway="ns/gw") == record


async def test_second_consume_is_a_replay(store: StateStore) -> None:
    record = make_record()
    await store.create(record, TTL)
    await store.consume(record.nonce)
    assert await reason_of_consume(store, record.nonce) == StateRejection.REPLAYED
    assert await reason_of_consume(store, record.nonce) == StateRejection.REPLAYED


async def test_never_stored_is_unknown_every_time(store: StateStore) -> None:
    nonce = make_record().nonce
    assert await reason_of_consume(store, nonce) == StateRejection.UNKNOWN
    assert await reason_of_consume(store, nonce) == StateRejection.UNKNOWN


async def test_concurrent_consumes_succeed_exactly_once(store: StateStore) -> None:
    record = make_record()
    await store.create(record, TTL)
    results = await asyncio.gather(
        *(store.consume(record.nonce) for _ in range(20)), return_exceptions=True
    )
    assert sum(1 for r in results if r == record) == 1
    assert all(
        isinstance(r, StateRejected) and r.reason == StateRejection.REPLAYED
        for r in results
        if r != record
    )


async def test_record_expires_after_its_ttl(redis_server: RedisServer) -> None:
    store = await open_store(redis_server, expiry_grace=0)
    try:
        record = make_record()
        await store.create(record, 1)
        deadline = time.monotonic() + 5
        while await store.link.command("EXISTS", _flow_key(store, record.nonce)):
            assert time.monotonic() < deadline, "Redis never expired the record"
            await asyncio.sleep(0.1)
        assert await reason_of_consume(store, record.nonce) == StateRejection.UNKNOWN
    finally:
        await store.aclose()


async def test_ttl_includes_the_grace_and_keys_hide_the_nonce(store: StateStore) -> None:
    record = make_record()
    await store.create(record, 60)
    key = _flow_key(store, record.nonce)
    assert 60 < await store.link.command("TTL", key) <= 65
    stored = await store.link.command("GET", key)
    assert isinstance(stored, bytes)
    assert record.nonce.encode() not in key.encode()
    assert record.nonce.encode() not in stored
    assert hashlib.sha256(record.nonce.encode()).hexdigest() in key


async def test_create_refuses_to_overwrite(store: StateStore) -> None:
    record = make_record()
    await store.create(record, TTL)
    with pytest.raises(ValueError, match="already exists"):
        await store.create(make_record(nonce=record.nonce, user="mallory"), TTL)
    assert (await store.consume(record.nonce)).user == "alice@example.com"


async def test_unreadable_record_is_unknown_without_leaking(store: StateStore) -> None:
    record = make_record()
    await store.link.command(
        "SET", _flow_key(store, record.nonce), '{"code_verifier": "leak-me-please"}'
    )
    with pytest.raises(StateRejected) as info:
        await store.consume(record.nonce)
    assert info.value.reason == StateRejection.UNKNOWN
    assert info.value.__cause__ is None
    assert "leak-me-please" not in str(info.value)


async def test_killed_redis_fails_closed_then_recovers(own_redis: RedisServer) -> None:
    store = await open_store(own_redis)
    try:
        # Warm up: a pooled connection and the cached consume script both go stale below.
        warmup = make_record()
        await store.create(warmup, TTL)
        await store.consume(warmup.nonce)
        in_flight = make_record()
        await store.create(in_flight, TTL)

        own_redis.kill()
        for operation in (store.create(make_record(), TTL), store.consume(in_flight.nonce)):
            started = time.monotonic()
            with pytest.raises(StateStoreUnavailable) as info:
                await operation
            assert time.monotonic() - started < 3
            assert info.value.reason == Reason.STATE_STORE_UNREACHABLE
            assert own_redis.url not in str(info.value)
        with pytest.raises(StateStoreUnavailable):
            await store.ping()

        own_redis.restart()
        # The dataset died with the process: the flow in flight is unknown, not a crash.
        assert await reason_of_consume(store, in_flight.nonce) == StateRejection.UNKNOWN
        fresh = make_record()
        await store.create(fresh, TTL)
        assert await store.consume(fresh.nonce) == fresh
        await store.ping()
    finally:
        await store.aclose()


async def test_frozen_redis_times_out(own_redis: RedisServer) -> None:
    store = await open_store(own_redis)
    record = make_record()
    await store.create(record, TTL)
    pid = own_redis.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StateStoreUnavailable):
            await store.consume(record.nonce)
        assert time.monotonic() - started < STORE_TIMEOUT + 2
        os.kill(pid, signal.SIGCONT)
        # The timed-out connection was dropped: its late reply must not answer this command.
        fresh = make_record()
        await store.create(fresh, TTL)
        assert await store.consume(fresh.nonce) == fresh
    finally:
        os.kill(pid, signal.SIGCONT)
        await store.aclose()


async def test_restart_while_idle_needs_no_failed_request(own_redis: RedisServer) -> None:
    store = await open_store(own_redis)
    try:
        warmup = make_record()
        await store.create(warmup, TTL)
        await store.consume(warmup.nonce)
        own_redis.restart()
        # A serving process keeps its event loop running, which notices the closed sockets.
        await asyncio.sleep(0.2)
        record = make_record()
        await store.create(record, TTL)
        assert await store.consume(record.nonce) == record
    finally:
        await store.aclose()


def _flow_key(store: StateStore, nonce: str) -> str:
    return store.record_key(nonce)
