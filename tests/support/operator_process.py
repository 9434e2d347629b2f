"""Run the operator as a separate process under its own ServiceAccount, as it runs in a cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.control_plane import REPO, ControlPlane
from tests.support.processes import ManagedProcess, SetupError, free_port

CHART = REPO / "charts" / "mcpgw-operator"
RELEASE = "mcpgw"
SYSTEM_NAMESPACE = "mcpgw-system"
OPERATOR_SA = f"{RELEASE}-operator"


def render_chart(cp: ControlPlane, *show_only: str, values: dict[str, object] | None = None) -> str:
    """`helm template` of our chart: the same manifests users install."""
    args = [
        str(cp.assets / "helm"),
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        SYSTEM_NAMESPACE,
    ]
    for template in show_only:
        args += ["--show-only", template]
    if values:
        args += ["--set-json", ",".join(f"{k}={json.dumps(v)}" for k, v in values.items())]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise SetupError(f"helm template failed: {result.stderr}")
    return result.stdout


def install_operator_rbac(cp: ControlPlane) -> None:
    """Apply the chart's operator RBAC as admin (the operator itself never is admin)."""
    cp.kubectl_run("create", "namespace", SYSTEM_NAMESPACE)
    applied = cp.kubectl_run(
        "apply", "-f", "-", input=render_chart(cp, "templates/operator-rbac.yaml")
    )
    if applied.returncode != 0:
        raise SetupError(f"applying the operator RBAC failed: {applied.stderr}")


def start_operator(
    kubeconfig: Path,
    log_path: Path,
    *,
    namespaces: list[str],
    callback_public_url: str = "http://127.0.0.1:18080",
    extra_env: dict[str, str] | None = None,
    detach: bool = False,
    port: int | None = None,
) -> ManagedProcess:
    """Start `python -m mcpgw_operator` and wait until its liveness endpoint answers.

    `detach` starts it in a session of its own, so it outlives the caller (`make dev-up`).
    """
    port = port or free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(log_path.parent),
        "KUBECONFIG": str(kubeconfig),
        "MCPGW_NAMESPACES": json.dumps(namespaces),
        "MCPGW_CALLBACK_PUBLIC_URL": callback_public_url,
        "MCPGW_TIMER_SECONDS": "2",
        **(extra_env or {}),
    }
    proc = ManagedProcess(
        name="operator",
        argv=[
            sys.executable,
            "-m",
            "mcpgw_operator",
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
        ],
        log_path=log_path,
        env=env,
        cwd=REPO,
        detach=detach,
    ).start()
    proc.wait_ready(lambda: _healthy(port), timeout=60)
    return proc


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
