"""A small MCP resource server that demands OAuth: 401 with RFC 9728 resource metadata."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class MCPResourceServer:
    base_url: str
    issuer: str
    advertise_in_header: bool

    @property
    def url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/.well-known/oauth-protected-resource/mcp"


@contextmanager
def serve_mcp_resource(
    issuer: str, *, advertise_in_header: bool = True, port: int = 0
) -> Iterator[MCPResourceServer]:
    """Serve on a free loopback port in a thread; every MCP request without a token gets 401."""
    state: dict[str, MCPResourceServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _json(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            server = state["server"]
            if self.path == "/.well-known/oauth-protected-resource/mcp":
                self._json(
                    200,
                    {
                        "resource": server.url,
                        "authorization_servers": [server.issuer],
                        "scopes_supported": ["mcp:tools"],
                        "bearer_methods_supported": ["header"],
                    },
                )
            elif self.path.startswith("/mcp"):
                self._challenge()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            self._challenge()

        def _challenge(self) -> None:
            server = state["server"]
            headers = {}
            if server.advertise_in_header:
                headers["WWW-Authenticate"] = (
                    f'Bearer resource_metadata="{server.metadata_url}", scope="mcp:tools"'
                )
            else:
                headers["WWW-Authenticate"] = "Bearer"
            self._json(401, {"error": "unauthorized"}, headers)

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    port = httpd.server_address[1]
    state["server"] = MCPResourceServer(f"http://127.0.0.1:{port}", issuer, advertise_in_header)
    thread = threading.Thread(target=httpd.serve_forever, name="mcp-resource", daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def main() -> None:
    """`python -m tests.support.mcp_resource ISSUER PORT`: the demo's protected MCP server."""
    import sys
    import time

    if len(sys.argv) != 3 or not sys.argv[2].isdigit():
        raise SystemExit("usage: python -m tests.support.mcp_resource ISSUER PORT")
    with serve_mcp_resource(sys.argv[1], port=int(sys.argv[2])) as server:
        print(f"READY {server.url}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
