"""The `local` backend: the product as processes against the tier-1 control plane.

No kubelet runs, so what a pod would do runs here as a process under the same identity: the
operator under the chart's operator RBAC, and two callback replicas under the chart's callback
RBAC, sharing one real Redis and the key ring the operator generated (copied from its Secret
into files, as a Secret volume would be). The authorization server is the oidc-provider peer,
rotating refresh tokens; the upstream MCP server answers 401 with RFC 9728 metadata, so the
operator discovers the issuer instead of being told it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.e2e.backends import JSON, NAMESPACE_PREFIX, Cluster
from tests.support.accounts import service_account_kubeconfig
from tests.support.callback_replicas import (
    CALLBACK_SA,
    USER_HEADER,
    CallbackReplica,
    start_replica,
)
from tests.support.control_plane import ControlPlane
from tests.support.dev_stack import install_api, materialize_keys
from tests.support.mcp_resource import serve_mcp_resource
from tests.support.oidc_peer import start_oidc_peer
from tests.support.operator_process import (
    OPERATOR_SA,
    SYSTEM_NAMESPACE,
    start_operator,
)
from tests.support.processes import ManagedProcess, free_port
from tests.support.redis_server import start_redis

#: Its own callback name (and so key Secret), apart from other tests' operators in the session.
CALLBACK_NAME: Final = "mcpgw-e2e-callback"
KEY_SECRET: Final = f"{CALLBACK_NAME}-state-keys"
KEY_WAIT_SECONDS: Final = 30.0
TIMER_SECONDS: Final = 1.0


@dataclass
class LocalCluster(Cluster):
    # Processes stay out of the repr: a failing assertion prints it, and their env is long.
    control_plane: ControlPlane = field(repr=False)
    issuer: str
    start_url: str
    public_url: str
    mcp_url: str
    operator: ManagedProcess = field(repr=False)
    replicas: tuple[CallbackReplica, CallbackReplica] = field(repr=False)
    name: str = "local"
    user_header: str = USER_HEADER
    refresh_tick_seconds: float = TIMER_SECONDS

    def kubectl_run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.control_plane.kubectl_run(*args, input=input)

    def gateway_spec(self) -> JSON:
        # No issuer: the operator follows the 401 to the RFC 9728 metadata to find it.
        return {"url": self.mcp_url, "oauth": {"scopes": ["mcp:tools"]}}

    def component_logs(self) -> str:
        procs = [self.operator, *(replica.process for replica in self.replicas)]
        return "\n".join(p.log_path.read_text(errors="replace") for p in procs)


@contextmanager
def local_cluster(cp: ControlPlane, workdir: Path) -> Iterator[LocalCluster]:
    """Start everything (bounded waits throughout); stop it all on exit, newest first."""
    with ExitStack() as stack:
        redis = start_redis(workdir=workdir / "redis")
        stack.callback(redis.stop)
        peer = start_oidc_peer(
            issuer_path="/e2e", rotate_refresh_tokens=True, log_path=workdir / "oidc-peer.log"
        )
        stack.callback(peer.stop)
        mcp = stack.enter_context(serve_mcp_resource(peer.issuer))
        install_api(cp)
        operator_kc = service_account_kubeconfig(
            cp, SYSTEM_NAMESPACE, OPERATOR_SA, workdir / "operator.kubeconfig"
        )
        callback_kc = service_account_kubeconfig(
            cp, SYSTEM_NAMESPACE, CALLBACK_SA, workdir / "callback.kubeconfig"
        )
        first_port, second_port = free_port(), free_port()
        start_url = f"http://127.0.0.1:{first_port}"
        public_url = f"http://127.0.0.1:{second_port}"
        operator = start_operator(
            operator_kc,
            workdir / "operator.log",
            namespaces=[f"{NAMESPACE_PREFIX}*"],
            callback_public_url=public_url,
            extra_env={
                "POD_NAMESPACE": SYSTEM_NAMESPACE,
                "MCPGW_CALLBACK_NAME": CALLBACK_NAME,
                "MCPGW_CALLBACK_HEALTH_URL": start_url,
                "MCPGW_CALLBACK_REDIS_URL": redis.url,
                "MCPGW_CALLBACK_REPLICAS": "2",
                "MCPGW_CALLBACK_TRUSTED_PROXIES": "127.0.0.1/32",
                "MCPGW_CALLBACK_INFRA_SECONDS": "2",
                "MCPGW_TIMER_SECONDS": str(TIMER_SECONDS),
            },
        )
        stack.callback(operator.stop)
        materialize_keys(cp, workdir / "keys", secret=KEY_SECRET, timeout=KEY_WAIT_SECONDS)
        replicas: list[CallbackReplica] = []
        for port in (first_port, second_port):
            replica = start_replica(
                workdir=workdir,
                redis_url=redis.url,
                key_dir=workdir / "keys",
                public_url=public_url,
                kubeconfig=callback_kc,
                replicas=2,
                port=port,
            )
            stack.callback(replica.stop)
            replicas.append(replica)
        yield LocalCluster(
            control_plane=cp,
            issuer=peer.issuer,
            start_url=start_url,
            public_url=public_url,
            mcp_url=mcp.url,
            operator=operator,
            replicas=(replicas[0], replicas[1]),
        )
