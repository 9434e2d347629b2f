"""The authorize path's gateway cache: TTL, shared reads, failures not kept, disabled at 0."""

from __future__ import annotations

import asyncio

import pytest

from callback_service.errors import ServiceError
from callback_service.gateway_cache import GatewayCache
from mcpgw_core.api import Reason
from tests.support.callback_fakes import FakeKube

GATEWAY_GET = "/apis/mcpgw.dev/v1alpha1/namespaces/team-a/mcpgateways/github"


class SlowKube(FakeKube):
    """Reads wait for `release`, so concurrent callers overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def get(self, path: str) -> dict[str, object] | None:
        await self.release.wait()
        return await super().get(path)


def gets(kube: FakeKube) -> int:
    return sum(1 for verb, path in kube.calls if verb == "GET" and path == GATEWAY_GET)


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_gateway("team-a", "github")
    return k


async def test_reuses_a_read_until_the_ttl_passes(kube: FakeKube) -> None:
    now = [100.0]
    cache = GatewayCache(5.0, clock=lambda: now[0])
    first = await cache.get(kube, "team-a", "github")
    now[0] += 4.9
    assert await cache.get(kube, "team-a", "github") is first
    assert gets(kube) == 1
    now[0] += 0.2
    kube.add_gateway("team-a", "github", client_id="client-new")
    fresh = await cache.get(kube, "team-a", "github")
    assert fresh.client_id == "client-new"
    assert gets(kube) == 2


async def test_concurrent_misses_share_one_read() -> None:
    kube = SlowKube()
    kube.add_gateway("team-a", "github")
    cache = GatewayCache(5.0)
    waiting = [asyncio.create_task(cache.get(kube, "team-a", "github")) for _ in range(20)]
    await asyncio.sleep(0)
    kube.release.set()
    clients = await asyncio.gather(*waiting)
    assert {c.client_id for c in clients} == {"client-github"}
    assert gets(kube) == 1


async def test_failures_are_not_cached(kube: FakeKube) -> None:
    cache = GatewayCache(5.0)
    with pytest.raises(ServiceError) as caught:
        await cache.get(kube, "team-a", "absent")
    assert caught.value.reason == Reason.GATEWAY_NOT_FOUND
    kube.add_gateway("team-a", "absent")
    assert (await cache.get(kube, "team-a", "absent")).name == "absent"


async def test_concurrent_waiters_see_the_failure_too() -> None:
    kube = SlowKube()
    cache = GatewayCache(5.0)
    waiting = [asyncio.create_task(cache.get(kube, "team-a", "github")) for _ in range(3)]
    await asyncio.sleep(0)
    kube.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ServiceError) for r in results)
    assert gets(kube) == 1


async def test_ttl_zero_reads_every_time(kube: FakeKube) -> None:
    cache = GatewayCache(0.0)
    await cache.get(kube, "team-a", "github")
    await cache.get(kube, "team-a", "github")
    assert gets(kube) == 2


async def test_keeps_at_most_max_entries(kube: FakeKube) -> None:
    for name in ("a", "b", "c"):
        kube.add_gateway("team-a", name)
    cache = GatewayCache(5.0, max_entries=2)
    for name in ("a", "b", "c", "a"):
        await cache.get(kube, "team-a", name)
    reads = [p.rsplit("/", 1)[1] for v, p in kube.calls if "/mcpgateways/" in p]
    assert reads == ["a", "b", "c", "a"]  # "a" was evicted when "c" came in
