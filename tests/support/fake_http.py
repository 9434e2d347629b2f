"""A scripted HTTP peer for unit tests: routes by method and URL, records every request."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from mcpgw_core.http import build_client

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

ISSUER = "https://as.example.test/tenant1"
MCP_URL = "https://mcp.example.test/mcp"
REDIRECT_URI = "https://callback.example.test/oauth/callback"


class FakeHTTP:
    """Answers from `routes`; anything unrouted gets a 404, as a real server would."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, url: str, handler: Handler) -> None:
        self.routes[(method, url)] = handler

    def json(
        self,
        method: str,
        url: str,
        body: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        content = json.dumps(body).encode()

        def respond(_: httpx.Request) -> httpx.Response:
            merged = {"content-type": "application/json", **(headers or {})}
            return httpx.Response(status, content=content, headers=merged)

        self.on(method, url, respond)

    def status(
        self,
        method: str,
        url: str,
        status: int,
        *,
        text: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.on(method, url, lambda _: httpx.Response(status, text=text, headers=headers))

    def fail(self, method: str, url: str, exc: Exception) -> None:
        def raise_it(_: httpx.Request) -> httpx.Response:
            raise exc

        self.on(method, url, raise_it)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, str(request.url)))
        if handler is None:
            return httpx.Response(404, text="not found")
        result = handler(request)
        if inspect.isawaitable(result):
            return await result
        return result

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return build_client(transport=httpx.MockTransport(self.handle), **kwargs)

    def urls(self) -> list[str]:
        return [f"{r.method} {r.url}" for r in self.requests]


def as_metadata(issuer: str = ISSUER, **overrides: Any) -> dict[str, Any]:
    """An authorization server metadata document; `None` overrides remove a member."""
    doc: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/reg",
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "scopes_supported": ["openid", "mcp"],
    }
    doc.update(overrides)
    return {key: value for key, value in doc.items() if value is not None}


def prm_metadata(resource: str = MCP_URL, **overrides: Any) -> dict[str, Any]:
    """A protected resource metadata document (RFC 9728)."""
    doc: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["mcp"],
    }
    doc.update(overrides)
    return {key: value for key, value in doc.items() if value is not None}
