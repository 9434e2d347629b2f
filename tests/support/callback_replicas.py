"""Runs callback-service replicas as separate uvicorn processes sharing Redis and a key dir.

Replicas run under the chart's callback ServiceAccount (`install_callback_rbac`, then
`callback_kubeconfig`), never as admin, so a permission missing from the chart fails a test.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.accounts import service_account_kubeconfig
from tests.support.control_plane import ControlPlane
from tests.support.operator_process import RELEASE, SYSTEM_NAMESPACE, render_chart
from tests.support.processes import ManagedProcess, SetupError, free_port

READY_TIMEOUT_SECONDS = 20.0
USER_HEADER = "X-Forwarded-User"
CALLBACK_SA = f"{RELEASE}-callback"
CALLBACK_USER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{CALLBACK_SA}"


def install_callback_rbac(cp: ControlPlane) -> None:
    """Apply the chart's callback ServiceAccount, ClusterRole and binding as admin."""
    created = cp.kubectl_run("create", "namespace", SYSTEM_NAMESPACE)
    if created.returncode != 0 and "already exists" not in created.stderr.lower():
        raise SetupError(f"creating namespace {SYSTEM_NAMESPACE} failed: {created.stderr}")
    applied = cp.kubectl_run(
        "apply", "-f", "-", input=render_chart(cp, "templates/callback-rbac.yaml")
    )
    if applied.returncode != 0:
        raise SetupError(f"applying the callback RBAC failed: {applied.stderr}")


def callback_kubeconfig(cp: ControlPlane, path: Path) -> Path:
    """Install the callback RBAC and write a kubeconfig for its ServiceAccount to `path`."""
    install_callback_rbac(cp)
    return service_account_kubeconfig(cp, SYSTEM_NAMESPACE, CALLBACK_SA, path)


@dataclass
class CallbackReplica:
    """One `python -m callback_service` process on its own loopback port."""

    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def start_replica(
    *,
    workdir: Path,
    redis_url: str,
    key_dir: Path,
    public_url: str,
    kubeconfig: Path,
    replicas: int,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    detach: bool = False,
) -> CallbackReplica:
    """Start one replica; every replica of a test gets the same Redis, keys and public URL."""
    port = port or free_port()
    env = {
        **os.environ,
        "MCPGW_CALLBACK_REDIS_URL": redis_url,
        "MCPGW_CALLBACK_REDIS_TIMEOUT_SECONDS": "1",
        "MCPGW_CALLBACK_KEY_DIR": str(key_dir),
        "MCPGW_CALLBACK_PUBLIC_URL": public_url,
        "MCPGW_CALLBACK_KUBECONFIG": str(kubeconfig),
        "MCPGW_CALLBACK_AUTH_MODE": "proxy-header",
        "MCPGW_CALLBACK_USER_HEADER": USER_HEADER,
        "MCPGW_CALLBACK_TRUSTED_PROXIES": "127.0.0.1/32",
        "MCPGW_CALLBACK_REPLICAS": str(replicas),
        "MCPGW_CALLBACK_HOST": "127.0.0.1",
        "MCPGW_CALLBACK_PORT": str(port),
        "MCPGW_CALLBACK_LOG_LEVEL": "info",
        **(extra_env or {}),
    }
    env.pop("KUBECONFIG", None)
    process = ManagedProcess(
        name=f"callback-service:{port}",
        argv=[sys.executable, "-m", "callback_service"],
        log_path=workdir / f"callback-{port}.log",
        env=env,
        detach=detach,
    ).start()
    replica = CallbackReplica(port, process)
    ready = False
    try:
        process.wait_ready(lambda: _healthy(replica.url), READY_TIMEOUT_SECONDS)
        ready = True
    finally:
        if not ready:
            process.stop()
    return replica
