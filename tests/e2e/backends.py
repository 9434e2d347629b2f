"""The e2e suite's cluster backends: what a scenario may ask of a cluster, and which one runs.

A scenario talks to a `Cluster` only: kubectl, the issuer of the authorization server the
operator uses, the callback service URLs the test process reaches, the user header an auth
proxy would set, and the peer's admin counters. `local` runs the product as processes against
the tier-1 control plane; `kind` installs the image with the chart into a kind cluster.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit

import httpx

from tests.support.oidc_peer import PeerStats

JSON = dict[str, Any]
BACKENDS: Final = ("local", "kind")
DEFAULT_BACKEND: Final = "local"
ENV_VAR: Final = "MCPGW_E2E_CLUSTER"
#: Every scenario namespace starts with this; the local operator watches exactly these.
NAMESPACE_PREFIX: Final = "mcpgw-e2e-"
ADMIN_TIMEOUT: Final = httpx.Timeout(5.0)


class BackendChoiceError(ValueError):
    """`--cluster` or MCPGW_E2E_CLUSTER names no known backend."""


def selected_backend(option: str | None, env: Mapping[str, str]) -> str:
    """The backend to use: the pytest option wins over the environment; `local` by default."""
    raw = option or env.get(ENV_VAR) or DEFAULT_BACKEND
    choice = raw.strip().lower()
    if choice not in BACKENDS:
        source = "--cluster" if option else ENV_VAR
        raise BackendChoiceError(f"{source}={raw!r}: expected one of {', '.join(BACKENDS)}")
    return choice


class Cluster(ABC):
    """What every scenario needs from a cluster, whichever way it was made."""

    #: `local` or `kind`; shown in test reports.
    name: str
    #: Issuer of the authorization-server peer, as the operator and the browser reach it.
    issuer: str
    #: Callback base URL where flows start (replica 1 on `local`, the Service on `kind`).
    start_url: str
    #: The callback's public URL: the authorization server sends browsers back here (replica 2
    #: on `local`, so a flow started on replica 1 completes on replica 2).
    public_url: str
    #: The header a trusted auth proxy sets; the callback believes it from the test process.
    user_header: str
    #: How often the operator's refresh loop looks at due token Secrets (MCPGW_TIMER_SECONDS).
    refresh_tick_seconds: float

    @abstractmethod
    def kubectl_run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run kubectl as the cluster's admin (never as a component)."""

    @abstractmethod
    def gateway_spec(self) -> JSON:
        """The `spec` of a gateway this cluster can serve (upstream URL, issuer or discovery)."""

    @abstractmethod
    def component_logs(self) -> str:
        """The operator's and every callback replica's log so far, for secret-leak checks."""

    # --- Shared behaviour on top of kubectl ----------------------------------------------

    def create_namespace(self) -> str:
        name = f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
        created = self.kubectl_run("create", "namespace", name)
        assert created.returncode == 0, created.stderr
        return name

    def delete_namespace(self, name: str) -> None:
        self.kubectl_run("delete", "namespace", name, "--wait=false")

    def apply(self, manifest: JSON) -> None:
        applied = self.kubectl_run("apply", "-f", "-", input=json.dumps(manifest))
        assert applied.returncode == 0, applied.stderr

    def get(self, kind: str, name: str, namespace: str) -> JSON | None:
        got = self.kubectl_run("get", kind, name, "-n", namespace, "-o", "json")
        if got.returncode != 0:
            assert "NotFound" in got.stderr, got.stderr
            return None
        return cast(JSON, json.loads(got.stdout))

    def secret_values(self, name: str, namespace: str) -> dict[str, str] | None:
        """The decoded data of a Secret, or None when it does not exist."""
        secret = self.get("secret", name, namespace)
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def make_gateway(self, name: str, namespace: str) -> JSON:
        return {
            "apiVersion": "mcpgw.dev/v1alpha1",
            "kind": "MCPGateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": self.gateway_spec(),
        }

    # --- The peer's admin API (test-only counters; never a token or secret) ---------------

    def _admin(self, path: str) -> httpx.Response:
        parts = urlsplit(self.issuer)
        url = f"{parts.scheme}://{parts.netloc}{path}"
        return httpx.get(url, timeout=ADMIN_TIMEOUT, trust_env=False)

    def peer_stats(self) -> PeerStats:
        answer = self._admin("/__admin/stats")
        assert answer.status_code == 200, f"peer stats answered HTTP {answer.status_code}"
        return cast(PeerStats, answer.json())

    def peer_client(self, client_id: str) -> JSON | None:
        """The client as the peer stored it (secret replaced by its hash), or None."""
        answer = self._admin(f"/__admin/clients/{quote(client_id, safe='')}")
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, f"peer client lookup answered {answer.status_code}"
        return cast(JSON, answer.json())
