"""A scriptable authorization server for faults the real peer cannot produce (stdlib only).

Routes are keyed by method and path; anything unrouted answers 404. Every request is recorded
(method, path), so a test can count how often the operator came back: proof of backoff rather
than a hot loop. Slow routes wait on an event, so stopping the server never hangs on them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WELL_KNOWN_OAUTH = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True)
class Route:
    """One canned answer."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class FakeAS:
    """A running fake; add routes at any time, read `requests` to see what arrived."""

    base_url: str
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def issuer(self, tenant: str) -> str:
        """An issuer with a path, so each tenant is its own authorization server."""
        return f"{self.base_url}/{tenant}"

    def route(self, method: str, path: str, route: Route) -> None:
        with self.lock:
            self.routes[(method, path)] = route

    def json_route(self, method: str, path: str, doc: Any, *, status: int = 200) -> None:
        self.route(method, path, Route(status, json.dumps(doc).encode()))

    def metadata_path(self, tenant: str) -> str:
        """RFC 8414 sec. 3.1: the well-known suffix inserted before the issuer's path."""
        return f"{WELL_KNOWN_OAUTH}/{tenant}"

    def serve_metadata(self, tenant: str, **overrides: Any) -> str:
        """Valid metadata for `issuer(tenant)`; `None` overrides drop a member. Returns issuer."""
        issuer = self.issuer(tenant)
        doc = as_metadata(issuer, **overrides)
        self.json_route("GET", self.metadata_path(tenant), doc)
        return issuer

    def count(self, path_prefix: str) -> int:
        with self.lock:
            return sum(1 for _, path in self.requests if path.startswith(path_prefix))

    def _lookup(self, method: str, path: str) -> Route | None:
        with self.lock:
            self.requests.append((method, path))
            return self.routes.get((method, path))


def as_metadata(issuer: str, **overrides: Any) -> dict[str, Any]:
    """A complete RFC 8414 document for `issuer`, S256 PKCE and DCR included."""
    doc: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/reg",
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
    }
    doc.update(overrides)
    return {key: value for key, value in doc.items() if value is not None}


def _handler_for(fake: FakeAS) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            route = fake._lookup(self.command, self.path.split("?", 1)[0])
            if route is None:
                route = Route(404, b'{"error":"not_found"}')
            if route.delay and fake.stopping.wait(route.delay):
                return  # shutting down: drop the connection unanswered
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up waiting, as a timed-out operator does

        do_GET = _answer
        do_POST = _answer
        do_DELETE = _answer
        do_PUT = _answer

    return Handler


@contextmanager
def serve_fake_as() -> Iterator[FakeAS]:
    """Serve on a free loopback port in a thread until the block ends."""
    fake = FakeAS(base_url="")

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), _handler_for(fake))
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="fake-as", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
