"""The discovery cache: TTL by injected clock or `now`, single flight, failures not cached."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mcpgw_core.discovery import DiscoveryError, MetadataCache
from tests.support.fake_http import ISSUER, MCP_URL, FakeHTTP, as_metadata, prm_metadata

AS_8414 = "https://as.example.test/.well-known/oauth-authorization-server/tenant1"
PRM_INSERTED = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def serving() -> FakeHTTP:
    fake = FakeHTTP()
    fake.status("GET", MCP_URL, 401)
    fake.json("GET", PRM_INSERTED, prm_metadata())
    fake.json("GET", AS_8414, as_metadata())
    return fake


async def test_fresh_entries_are_served_without_requests_and_expire_after_ttl() -> None:
    fake, clock = serving(), Clock()
    cache = MetadataCache(ttl=60, clock=clock)
    async with fake.client() as client:
        first = await cache.get_or_discover(client, resource_url=MCP_URL, issuer=None)
        clock.now += 59
        second = await cache.get_or_discover(client, resource_url=MCP_URL, issuer=None)
        assert len(fake.requests) == 3
        clock.now += 2
        await cache.get_or_discover(client, resource_url=MCP_URL, issuer=None)
    assert second == first
    assert len(fake.requests) == 6


async def test_explicit_now_overrides_the_clock() -> None:
    fake = serving()
    cache = MetadataCache(ttl=60, clock=lambda: pytest.fail("clock must not be read"))
    async with fake.client() as client:
        await cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER, now=0.0)
        await cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER, now=30.0)
        assert len(fake.requests) == 1
        await cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER, now=61.0)
    assert len(fake.requests) == 2


async def test_issuer_metadata_is_shared_between_resources() -> None:
    fake = serving()
    other = "https://mcp.example.test/other"
    fake.status("GET", other, 401)
    fake.json(
        "GET",
        "https://mcp.example.test/.well-known/oauth-protected-resource/other",
        prm_metadata(resource=other),
    )
    cache = MetadataCache(ttl=60, clock=Clock())
    async with fake.client() as client:
        await cache.get_or_discover(client, resource_url=MCP_URL, issuer=None)
        found = await cache.get_or_discover(client, resource_url=other, issuer=None)
    assert fake.urls().count(f"GET {AS_8414}") == 1
    assert found.resource == other


async def test_concurrent_callers_share_one_fetch() -> None:
    gate = asyncio.Event()

    async def slow_metadata(_: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(200, json=as_metadata())

    fake = FakeHTTP()
    fake.on("GET", AS_8414, slow_metadata)
    cache = MetadataCache(ttl=60, clock=Clock())
    async with fake.client() as client:
        calls = [
            cache.get_or_discover(client, resource_url=f"{MCP_URL}/{i}", issuer=ISSUER)
            for i in range(20)
        ]
        pending = asyncio.gather(*calls)
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.wait_for(pending, 5)
    assert len(fake.requests) == 1
    assert {r.issuer for r in results} == {ISSUER}


async def test_failures_are_not_cached() -> None:
    fake = FakeHTTP()
    fake.status("GET", AS_8414, 503)
    cache = MetadataCache(ttl=60, clock=Clock())
    async with fake.client() as client:
        with pytest.raises(DiscoveryError):
            await cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER)
        fake.json("GET", AS_8414, as_metadata())
        found = await cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER)
    assert found.issuer == ISSUER


async def test_invalidate_forces_a_new_fetch() -> None:
    fake = serving()
    cache = MetadataCache(ttl=60, clock=Clock())
    async with fake.client() as client:
        await cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER)
        cache.invalidate(issuer=ISSUER)
        await cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER)
    assert len(fake.requests) == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch() -> None:
    gate = asyncio.Event()

    async def slow_metadata(_: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(200, json=as_metadata())

    fake = FakeHTTP()
    fake.on("GET", AS_8414, slow_metadata)
    cache = MetadataCache(ttl=60, clock=Clock())
    async with fake.client() as client:
        first = asyncio.ensure_future(
            cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER)
        )
        second = asyncio.ensure_future(
            cache.get_or_discover(client, resource_url=MCP_URL, issuer=ISSUER)
        )
        await asyncio.sleep(0.05)
        first.cancel()
        gate.set()
        found = await asyncio.wait_for(second, 5)
    assert found.issuer == ISSUER
    assert len(fake.requests) == 1
