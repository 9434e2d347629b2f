"""The refresher's writes, with an in-memory API server and a rotating token endpoint.

The token endpoint behaves like a server that rotates refresh tokens: presenting a used one
is `invalid_grant`. It is slow on purpose, so concurrent triggers really overlap.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs

import httpx
import pytest

from mcpgw_core.kube import Kube, KubeError, core_path, gateway_path
from mcpgw_core.token_secrets import (
    REFRESH_ERROR_ANNOTATION,
    REFRESH_LEASE_ANNOTATION,
    REFRESH_REQUESTED_ANNOTATION,
    token_data,
    token_secret,
)
from mcpgw_core.tokens import TokenSet
from mcpgw_operator.events import EventSink
from mcpgw_operator.refresher import Refresher
from mcpgw_operator.settings import OperatorSettings

JSON = dict[str, Any]
NS, GATEWAY, USER = "ns", "gw", "alice"
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
TOKEN_ENDPOINT = "https://as.example/token"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _merge(target: JSON, patch: JSON) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class FakeApi:
    """Objects by path; merge patches honour metadata.resourceVersion like the API server."""

    objects: dict[str, JSON] = field(default_factory=dict)
    created: list[JSON] = field(default_factory=list)
    versions: Iterator[int] = field(default_factory=lambda: itertools.count(100))

    def put(self, path: str, body: JSON) -> None:
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(next(self.versions))
        self.objects[path] = body

    async def get(self, path: str) -> JSON | None:
        await asyncio.sleep(0)
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def merge_patch(self, path: str, body: JSON) -> JSON:
        await asyncio.sleep(0)
        current = self.objects.get(path)
        if current is None:
            raise KubeError(404, "NotFound", path)
        body = copy.deepcopy(body)
        wanted = body.get("metadata", {}).pop("resourceVersion", None)
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "the object has been modified")
        _merge(current, body)
        current["metadata"]["resourceVersion"] = str(next(self.versions))
        return copy.deepcopy(current)

    async def create(self, path: str, body: JSON) -> JSON:
        self.created.append(body)
        return body


@dataclass
class RotatingAS:
    """A token endpoint that rotates refresh tokens; reuse is invalid_grant."""

    live: str = "rt-0"
    calls: int = 0
    reuse: int = 0
    status: int = 200
    delay: float = 0.05
    rotate: bool = True
    during: Callable[[], None] | None = None  # runs while a request is in flight

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        await asyncio.sleep(self.delay)
        if self.during is not None:
            self.during()
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "server_error"})
        if form.get("refresh_token") != self.live:
            self.reuse += 1
            return httpx.Response(400, json={"error": "invalid_grant"})
        body: JSON = {"access_token": f"at-{self.calls}", "expires_in": 3600}
        if self.rotate:
            self.live = f"rt-{self.calls}"
            body["refresh_token"] = self.live
        return httpx.Response(200, json=body)


@dataclass
class World:
    api: FakeApi
    server: RotatingAS
    http: httpx.AsyncClient
    path: str

    def refresher(self, holder: str) -> Refresher:
        settings = OperatorSettings(refresh_before_seconds=60, refresh_retry_seconds=10)
        kube = cast(Kube, self.api)
        return Refresher(
            kube, self.http, EventSink(kube), settings, holder=holder, clock=lambda: NOW
        )

    def secret(self) -> JSON:
        return self.api.objects[self.path]

    def values(self) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in self.secret()["data"].items()}

    def annotations(self) -> dict[str, str]:
        return dict(self.secret()["metadata"]["annotations"])


def tokens(refresh: str = "rt-0", access: str = "at-0", expires_in: float = 3600) -> TokenSet:
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=NOW + timedelta(seconds=expires_in),
        obtained_at=NOW - timedelta(minutes=5),
    )


@pytest.fixture
async def world() -> World:
    api, server = FakeApi(), RotatingAS()
    manifest = token_secret(
        namespace=NS, gateway=GATEWAY, gateway_uid="u", user=USER, tokens=tokens()
    )
    manifest["metadata"]["annotations"][REFRESH_REQUESTED_ANNOTATION] = "now"
    path = core_path("secrets", NS, manifest["metadata"]["name"])
    api.put(path, manifest)
    api.put(
        gateway_path(NS, GATEWAY),
        {
            "apiVersion": "mcpgw.dev/v1alpha1",
            "kind": "MCPGateway",
            "metadata": {"name": GATEWAY, "namespace": NS, "uid": "u"},
            "spec": {"url": "https://mcp.example/mcp"},
        },
    )
    client = {
        "client_id": "c1",
        "client_secret": "client-secret-value",
        "token_endpoint": TOKEN_ENDPOINT,
    }
    api.put(
        core_path("secrets", NS, f"{GATEWAY}-oauth-client"),
        {
            "metadata": {"name": f"{GATEWAY}-oauth-client"},
            "data": {k: _b64(v) for k, v in client.items()},
        },
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handle))
    return World(api, server, http, path)


def key(world: World) -> tuple[str, str]:
    return NS, world.secret()["metadata"]["name"]


async def test_racing_triggers_in_one_process_refresh_once(world: World) -> None:
    refresher = world.refresher("op-a")
    await asyncio.gather(*(refresher.refresh(key(world)) for _ in range(3)))
    assert (world.server.calls, world.server.reuse) == (1, 0)
    assert world.values()["refresh_token"] == world.server.live == "rt-1"
    assert world.values()["access_token"] == "at-1"
    assert REFRESH_REQUESTED_ANNOTATION not in world.annotations()
    assert REFRESH_LEASE_ANNOTATION not in world.annotations()


async def test_two_processes_racing_refresh_once_thanks_to_the_lease(world: World) -> None:
    a, b = world.refresher("op-a"), world.refresher("op-b")
    await asyncio.gather(a.refresh(key(world)), b.refresh(key(world)))
    assert (world.server.calls, world.server.reuse) == (1, 0)
    assert world.values()["refresh_token"] == world.server.live
    assert REFRESH_ERROR_ANNOTATION not in world.annotations()


async def test_a_trigger_after_the_refresh_finds_fresh_tokens_and_does_nothing(
    world: World,
) -> None:
    refresher = world.refresher("op-a")
    stale_event = copy.deepcopy(world.secret())  # what a late watch event still shows
    await refresher.refresh(key(world))
    await refresher.saw(stale_event)
    assert world.server.calls == 1
    # The new set is due 60 s before its expiry; that is when the loop looks again.
    assert refresher.due[key(world)] == NOW + timedelta(seconds=3600 - 60)


async def test_the_old_refresh_token_is_kept_when_none_is_returned(world: World) -> None:
    world.server.rotate = False
    await world.refresher("op-a").refresh(key(world))
    assert world.values()["refresh_token"] == "rt-0"
    assert world.values()["access_token"] == "at-1"


async def test_an_ambiguous_failure_changes_no_token_and_backs_off(world: World) -> None:
    world.server.status = 503
    refresher = world.refresher("op-a")
    before = world.values()
    await refresher.refresh(key(world))
    assert world.values() == before
    annotations = world.annotations()
    assert REFRESH_ERROR_ANNOTATION not in annotations
    assert REFRESH_REQUESTED_ANNOTATION in annotations  # still asked for; retried later
    assert refresher.due[key(world)] == NOW + timedelta(seconds=10)
    # Our own lease write comes back as a watch event: it must not cut the backoff short.
    await refresher.saw(copy.deepcopy(world.secret()))
    assert world.server.calls == 1
    await refresher.refresh(key(world))  # the retry (the loop would start it when due)
    assert refresher.due[key(world)] == NOW + timedelta(seconds=20)
    world.server.status = 200
    await refresher.refresh(key(world))
    assert world.values()["refresh_token"] == "rt-3"
    assert key(world) not in refresher.failures


async def test_a_definite_failure_is_recorded_the_tokens_kept_and_an_event_posted(
    world: World,
) -> None:
    world.server.live = "rt-rotated-elsewhere"
    before = world.values()
    await world.refresher("op-a").refresh(key(world))
    assert world.values() == before
    annotations = world.annotations()
    assert annotations[REFRESH_ERROR_ANNOTATION] == "invalid_grant"
    assert REFRESH_REQUESTED_ANNOTATION not in annotations
    assert REFRESH_LEASE_ANNOTATION not in annotations
    [event] = world.api.created
    assert (event["type"], event["reason"]) == ("Warning", "RefreshFailed")
    assert "rt-0" not in event["message"]
    assert "client-secret-value" not in event["message"]


async def test_a_new_authorization_stored_meanwhile_is_never_overwritten(world: World) -> None:
    fresh = token_data(tokens(refresh="rt-new-login", access="at-new-login"))

    def callback_stores_a_new_authorization() -> None:
        world.api.put(world.path, {**copy.deepcopy(world.secret()), "data": fresh})

    world.server.during = callback_stores_a_new_authorization
    await world.refresher("op-a").refresh(key(world))
    assert world.server.calls == 1
    assert world.secret()["data"] == fresh


async def test_a_request_without_a_refresh_token_is_cleared_without_calling_the_as(
    world: World,
) -> None:
    data = dict(world.secret()["data"])
    del data["refresh_token"]
    world.secret()["data"] = data
    await world.refresher("op-a").refresh(key(world))
    assert world.server.calls == 0
    assert REFRESH_REQUESTED_ANNOTATION not in world.annotations()


async def test_a_due_set_is_refreshed_without_a_request(world: World) -> None:
    manifest = token_secret(
        namespace=NS, gateway=GATEWAY, gateway_uid="u", user=USER, tokens=tokens(expires_in=30)
    )
    world.api.put(world.path, manifest)
    refresher = world.refresher("op-a")
    await refresher.saw(copy.deepcopy(world.secret()))
    assert world.server.calls == 1
    assert world.values()["access_token"] == "at-1"
