"""The product running locally for `make dev-up` and `make demo`: operator, callback, demo MCP.

Everything runs as it would in a cluster, minus the kubelet: the operator and one callback
replica are local processes under their own ServiceAccounts (the chart's RBAC), sharing the
dev Redis and the HMAC key ring the operator generated.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.accounts import service_account_kubeconfig
from tests.support.callback_replicas import (
    CALLBACK_SA,
    USER_HEADER,
    install_callback_rbac,
    start_replica,
)
from tests.support.control_plane import REPO, ControlPlane
from tests.support.operator_process import (
    OPERATOR_SA,
    SYSTEM_NAMESPACE,
    install_operator_rbac,
    start_operator,
)
from tests.support.processes import ManagedProcess, SetupError, port_open

KEY_SECRET = "mcpgw-callback-state-keys"
DEV_USER = "dev-user"
TOKEN_LIFETIME = "24h"  # dev ServiceAccount tokens; `make dev-up` again after a day


@dataclass
class Stack:
    processes: list[tuple[ManagedProcess, str]]
    callback_url: str
    mcp_url: str
    env: dict[str, str]


def install_api(cp: ControlPlane) -> None:
    """The CRD and the chart's RBAC, applied as admin."""
    applied = cp.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
    if applied.returncode != 0:
        raise SetupError(f"applying the CRD failed: {applied.stderr}")
    cp.kubectl_run(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/mcpgateways.mcpgw.dev"
    )
    install_operator_rbac(cp)
    install_callback_rbac(cp)


def materialize_keys(
    cp: ControlPlane, key_dir: Path, *, secret: str = KEY_SECRET, timeout: float = 30.0
) -> None:
    """Wait for the operator-made key-ring Secret and copy it into files, as a Secret volume
    would, for callback replicas running as local processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cp.kubectl_run("get", "secret", secret, "-n", SYSTEM_NAMESPACE, "-o", "json")
        if got.returncode == 0:
            key_dir.mkdir(parents=True, exist_ok=True)
            key_dir.chmod(0o700)
            for name, value in (json.loads(got.stdout).get("data") or {}).items():
                path = key_dir / name
                path.write_bytes(base64.b64decode(value))
                path.chmod(0o600)
            return
        time.sleep(0.5)
    raise SetupError(f"the operator did not create Secret {SYSTEM_NAMESPACE}/{secret}")


def start_stack(
    cp: ControlPlane, dev: Path, *, redis_url: str, issuer: str, ports: dict[str, int]
) -> Stack:
    install_api(cp)
    logs = dev / "logs"
    callback_url = f"http://127.0.0.1:{ports['CALLBACK']}"
    operator_kc = service_account_kubeconfig(
        cp, SYSTEM_NAMESPACE, OPERATOR_SA, dev / "operator.kubeconfig", duration=TOKEN_LIFETIME
    )
    callback_kc = service_account_kubeconfig(
        cp, SYSTEM_NAMESPACE, CALLBACK_SA, dev / "callback.kubeconfig", duration=TOKEN_LIFETIME
    )
    started: list[tuple[ManagedProcess, str]] = []
    try:
        operator = start_operator(
            operator_kc,
            logs / "operator.log",
            namespaces=[],
            callback_public_url=callback_url,
            detach=True,
            port=ports["OPERATOR"],
            extra_env={
                "POD_NAMESPACE": SYSTEM_NAMESPACE,
                "MCPGW_CALLBACK_HEALTH_URL": callback_url,
                "MCPGW_CALLBACK_REDIS_URL": redis_url,
                "MCPGW_CALLBACK_REPLICAS": "1",
                "MCPGW_CALLBACK_TRUSTED_PROXIES": "127.0.0.1/32",
                "MCPGW_CALLBACK_INFRA_SECONDS": "5",
            },
        )
        started.append((operator, "mcpgw_operator"))
        materialize_keys(cp, dev / "keys")
        callback = start_replica(
            workdir=logs,
            redis_url=redis_url,
            key_dir=dev / "keys",
            public_url=callback_url,
            kubeconfig=callback_kc,
            replicas=1,
            port=ports["CALLBACK"],
            detach=True,
        )
        started.append((callback.process, "callback_service"))
        mcp = ManagedProcess(
            name="demo-mcp-server",
            argv=[sys.executable, "-m", "tests.support.mcp_resource", issuer, str(ports["MCP"])],
            log_path=logs / "demo-mcp-server.log",
            cwd=REPO,
            detach=True,
        ).start()
        started.append((mcp, "tests.support.mcp_resource"))
        mcp.wait_ready(lambda: port_open(ports["MCP"]), timeout=15)
    except SetupError:
        for proc, _ in reversed(started):
            proc.stop()
        raise
    return Stack(
        processes=started,
        callback_url=callback_url,
        mcp_url=f"http://127.0.0.1:{ports['MCP']}/mcp",
        env={
            "CALLBACK_URL": callback_url,
            "CALLBACK_AUTH_HEADER": f"{USER_HEADER}: {DEV_USER}",
            "DEMO_MCP_URL": f"http://127.0.0.1:{ports['MCP']}/mcp",
        },
    )
