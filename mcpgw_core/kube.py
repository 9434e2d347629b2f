"""The one gateway to the Kubernetes API: a small typed async client over httpx.

The official `kubernetes` client is synchronous (it would block Kopf's event loop) and the async
ports are untyped or bring an HTTP stack of their own; the operator and the callback service need
a dozen calls, so they go through this module, which also counts requests by verb for benchmarks.
Credentials come from a kubeconfig (token or client certificate) or from the in-cluster
ServiceAccount; the in-cluster token is re-read on every request because kubelet rotates it.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import yaml

from mcpgw_core.api import GROUP, PLURAL, VERSION

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
JSON = dict[str, Any]


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0 for transport failures)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass
class Credentials:
    server: str
    ssl_context: ssl.SSLContext
    token: str | None = None
    token_file: Path | None = None

    def bearer(self) -> str | None:
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context for a kubeconfig entry; inline data never lands on disk for long.

    The CA is loaded from memory. `load_cert_chain` only takes paths, so an inline client
    certificate and key go to a private temporary folder that is removed straight after.
    """
    if cluster.get("certificate-authority-data"):
        ca_pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
        ctx = ssl.create_default_context(cadata=ca_pem)
    else:
        ctx = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
    cert_file, key_file = user.get("client-certificate"), user.get("client-key")
    if cert_file and key_file:
        ctx.load_cert_chain(cert_file, key_file)
    elif user.get("client-certificate-data") and user.get("client-key-data"):
        with tempfile.TemporaryDirectory(prefix="mcpgw-kube-") as tmp:
            cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            for path, field_name in ((cert, "client-certificate-data"), (key, "client-key-data")):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(base64.b64decode(user[field_name]))
            ctx.load_cert_chain(str(cert), str(key))
    return ctx


def load_credentials(kubeconfig: str | None = None) -> Credentials:
    """From `kubeconfig`, else $KUBECONFIG, else the in-cluster ServiceAccount."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if not path and (SA_DIR / "token").exists():
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        ctx = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
        return Credentials(f"https://{host}:{port}", ctx, token_file=SA_DIR / "token")
    if not path:
        raise KubeError(0, "NoCredentials", "no KUBECONFIG and not running in a cluster")
    config = yaml.safe_load(Path(path).read_text())
    current = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    ctx = _ssl_context(cluster, user)
    token_file = Path(user["tokenFile"]) if user.get("tokenFile") else None
    return Credentials(cluster["server"], ctx, token=user.get("token"), token_file=token_file)


def gateway_path(namespace: str, name: str = "", sub: str = "") -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return "/".join(p for p in (base, name, sub) if p)


def core_path(kind_plural: str, namespace: str | None = None, name: str = "") -> str:
    base = (
        f"/api/v1/namespaces/{namespace}/{kind_plural}" if namespace else f"/api/v1/{kind_plural}"
    )
    return f"{base}/{name}" if name else base


@dataclass
class Kube:
    """Async Kubernetes API client: get, list, create, patch, delete, with a request counter."""

    credentials: Credentials
    timeout: float = 15.0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    _client: httpx.AsyncClient | None = None

    @classmethod
    def from_env(cls, kubeconfig: str | None = None) -> Kube:
        return cls(load_credentials(kubeconfig))

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.credentials.server,
                verify=self.credentials.ssl_context,
                timeout=self.timeout,
                follow_redirects=False,
                headers={"User-Agent": "mcpgw-operator"},
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: JSON | list[JSON] | None = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> JSON:
        headers = {"Accept": "application/json"}
        token = self.credentials.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        url = path + ("?" + urlencode(params) if params else "")
        self.counts[method] += 1
        try:
            resp = await self._http().request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise KubeError(0, "Unreachable", f"{method} {path}: {type(exc).__name__}") from exc
        data: JSON = resp.json() if resp.content else {}
        if resp.status_code >= 400:
            raise KubeError(
                resp.status_code, str(data.get("reason", "")), str(data.get("message", ""))[:500]
            )
        return data

    async def get(self, path: str) -> JSON | None:
        try:
            return await self.request("GET", path)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    async def list_items(self, path: str, label_selector: str | None = None) -> list[JSON]:
        params = {"labelSelector": label_selector} if label_selector else None
        items: list[JSON] = (await self.request("GET", path, params=params)).get("items", [])
        return items

    async def create(self, path: str, body: JSON) -> JSON:
        return await self.request("POST", path, body=body)

    async def merge_patch(self, path: str, body: JSON) -> JSON:
        return await self.request(
            "PATCH", path, body=body, content_type="application/merge-patch+json"
        )

    async def json_patch(self, path: str, ops: list[JSON]) -> JSON:
        return await self.request(
            "PATCH",
            path,
            body=ops,
            content_type="application/json-patch+json",
        )

    async def replace(self, path: str, body: JSON) -> JSON:
        return await self.request("PUT", path, body=body)

    async def delete(self, path: str) -> bool:
        try:
            await self.request("DELETE", path)
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.counts.items() if verb != "GET")


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def quote_name(name: str) -> str:
    return quote(name, safe="")
