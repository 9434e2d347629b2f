"""Fakes for the callback service's unit tests: Kubernetes, the flow store, the token endpoint."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI

from callback_service.app import create_app
from callback_service.resources import KeySource, Resources
from callback_service.settings import AuthMode, CallbackSettings
from mcpgw_core.api import StateRejection
from mcpgw_core.http import build_client
from mcpgw_core.keyring import KeyRing
from mcpgw_core.kube import KubeError, core_path, gateway_path
from mcpgw_core.state import StateRejected
from mcpgw_core.state_store import FlowRecord, StateStoreUnavailable

JSON = dict[str, Any]
PUBLIC_URL = "https://callback.test"
ISSUER = "https://as.test/tenant"
TOKEN_ENDPOINT = f"{ISSUER}/token"
PROXY_ADDRESS = "10.0.0.5"
USER_HEADER = "X-Forwarded-User"
CLIENT_SECRET = "client-secret-value-0123456789"
KEY_A = b"A" * 32
KEY_B = b"B" * 32


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def make_settings(**overrides: Any) -> CallbackSettings:
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "auth_mode": AuthMode.PROXY_HEADER,
        "trusted_proxies": "10.0.0.0/24",
        "redis_url": "redis://127.0.0.1:1/0",
        **overrides,
    }
    return CallbackSettings(**values)


class FakeKube:
    """Objects by API path; create conflicts on an existing name, like the API server."""

    def __init__(self) -> None:
        self.objects: dict[str, JSON] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_with: KubeError | None = None
        self._version = 0

    async def get(self, path: str) -> JSON | None:
        self._check("GET", path)
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def create(self, path: str, body: JSON) -> JSON:
        self._check("POST", path)
        target = f"{path}/{body['metadata']['name']}"
        if target in self.objects:
            raise KubeError(409, "AlreadyExists", f"{body['metadata']['name']} already exists")
        return self._put(target, body)

    async def replace(self, path: str, body: JSON) -> JSON:
        self._check("PUT", path)
        if path not in self.objects:
            raise KubeError(404, "NotFound", "not found")
        current = self.objects[path]["metadata"]["resourceVersion"]
        if body["metadata"].get("resourceVersion") != current:
            raise KubeError(409, "Conflict", "the object has been modified")
        return self._put(path, body)

    async def aclose(self) -> None:
        return None

    def _check(self, verb: str, path: str) -> None:
        self.calls.append((verb, path))
        if self.fail_with is not None:
            raise self.fail_with

    def _put(self, path: str, body: JSON) -> JSON:
        self._version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self._version)
        self.objects[path] = stored
        return copy.deepcopy(stored)

    def add_gateway(
        self, namespace: str, name: str, *, redirect_uri: str | None = None, **secret: str
    ) -> None:
        self.objects[gateway_path(namespace, name)] = {
            "apiVersion": "mcpgw.dev/v1alpha1",
            "kind": "MCPGateway",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": {"url": f"https://mcp.test/{name}", "oauth": {"scopes": ["mcp:tools"]}},
            "status": {"conditions": [{"type": "Registered", "status": "True", "reason": "R"}]},
        }
        values = {
            "client_id": f"client-{name}",
            "client_secret": CLIENT_SECRET,
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth?tenant=t1",
            "token_endpoint": TOKEN_ENDPOINT,
            "redirect_uri": redirect_uri or f"{PUBLIC_URL}/oauth/callback",
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid mcp:tools",
            **secret,
        }
        self.objects[core_path("secrets", namespace, f"{name}-oauth-client")] = {
            "metadata": {"name": f"{name}-oauth-client", "namespace": namespace},
            "data": {k: b64(v) for k, v in values.items() if v},
        }

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.objects.get(core_path("secrets", namespace, name))
        if found is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in found["data"].items()}


@dataclass
class FakeStore:
    """The flow store's contract in memory: single use, tombstones, and a switch for 'down'."""

    records: dict[str, str] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    down: bool = False

    async def create(self, record: FlowRecord, ttl: float) -> None:
        self._check()
        assert ttl > 0
        self.records[record.nonce] = record.model_dump_json()

    async def consume(self, nonce: str) -> FlowRecord:
        self._check()
        raw = self.records.pop(nonce, None)
        if raw is not None:
            self.consumed.add(nonce)
            return FlowRecord.model_validate({**json.loads(raw), "nonce": nonce})
        if nonce in self.consumed:
            raise StateRejected(StateRejection.REPLAYED, "state was already used")
        raise StateRejected(StateRejection.UNKNOWN, "no flow for this state")

    async def ping(self) -> None:
        self._check()

    async def aclose(self) -> None:
        return None

    def _check(self) -> None:
        if self.down:
            raise StateStoreUnavailable("Redis is unreachable or refused the command (Fake)")


@dataclass
class FakeTokenEndpoint:
    """Answers token requests with `respond` and records every request it saw."""

    respond: Callable[[httpx.Request], httpx.Response] = field(
        default=lambda _: httpx.Response(
            200,
            json={
                "access_token": "access-token-value-1",
                "refresh_token": "refresh-token-value-1",
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "openid mcp:tools",
            },
        )
    )
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    def forms(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(r.content.decode()).items()} for r in self.requests]


@dataclass
class Harness:
    """One app with fakes behind it, and a clock tests can move."""

    settings: CallbackSettings
    kube: FakeKube = field(default_factory=FakeKube)
    store: FakeStore = field(default_factory=FakeStore)
    token_endpoint: FakeTokenEndpoint = field(default_factory=FakeTokenEndpoint)
    ring: KeyRing = field(default_factory=lambda: KeyRing([("ka", KEY_A)]))
    now: float = 1_800_000_000.0
    resources: Resources | None = None

    def build(self) -> FastAPI:
        def factory(_: CallbackSettings) -> Resources:
            self.resources = Resources(
                store=self.store,
                keys=KeySource.of(self.ring),
                http=build_client(transport=httpx.MockTransport(self.token_endpoint)),
                kube=self.kube,
                clock=lambda: self.now,
            )
            return self.resources

        return create_app(self.settings, resources_factory=factory)

    @asynccontextmanager
    async def client(self, address: str = PROXY_ADDRESS) -> AsyncIterator[httpx.AsyncClient]:
        app = self.build()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
                yield http

    def metric(self, name: str, **labels: str) -> float:
        assert self.resources is not None
        value = self.resources.metrics.registry.get_sample_value(name, labels or None)
        return value or 0.0
