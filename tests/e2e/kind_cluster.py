"""The `kind` backend: the project image installed with the chart into a kind cluster.

Creates the cluster (or reuses one of the same name), builds and loads the project image and
the oidc-provider peer image, installs the chart (two callback replicas, bundled Redis), runs
the peer as a pod, and port-forwards the callback Service to the test process.

Addresses: the callback's public URL is the loopback end of `kubectl port-forward`, which the
test process's "browser" uses and which the peer accepts as an http redirect URI. The peer runs
with the node's network and binds the node's address, so its issuer URL means the same thing to
the pods (operator, callback) and to the test process, which reaches a kind node's address
directly on Linux. The chart's Redis image and the peer's node base image are pulled from the
public registries, so the machine running this needs registry access.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.e2e.backends import JSON, Cluster
from tests.e2e.kind_manifests import (
    PEER_ISSUER_PATH,
    PEER_NAMESPACE,
    PEER_PORT,
    chart_values,
    peer_manifests,
)
from tests.support.callback_replicas import USER_HEADER
from tests.support.control_plane import REPO
from tests.support.oidc_peer import PEER_DIR
from tests.support.processes import ManagedProcess, SetupError, ensure_port_free, port_open

RELEASE: Final = "mcpgw"
SYSTEM_NAMESPACE: Final = "mcpgw-system"
CALLBACK: Final = f"{RELEASE}-callback"  # the Deployment and Service the operator creates
BUILD_TIMEOUT: Final = 1800.0
STEP_TIMEOUT: Final = 600.0


@dataclass(frozen=True)
class KindSettings:
    """Everything the kind backend takes from the environment (documented in the README)."""

    cluster: str = "mcpgw-e2e"
    image: str = "mcpgw"  # repository; the tag is derived from the built image's ID
    peer_image: str = "mcpgw-oidc-peer"
    base_image: str = ""  # Dockerfile BASE_IMAGE build argument; empty keeps its default
    peer_base_image: str = ""  # tests/peers/oidc/Dockerfile NODE_IMAGE; empty keeps its default
    keep: bool = False  # keep a cluster this run created (one it reused is always kept)
    # The callback's public URL is http://127.0.0.1:<port>; fixed, so a reused cluster's
    # release keeps its redirect URI (the chart's default publicURL uses 18080 too).
    callback_port: int = 18080

    @classmethod
    def from_env(cls, env: dict[str, str]) -> KindSettings:
        return cls(
            cluster=env.get("MCPGW_E2E_KIND_CLUSTER") or cls.cluster,
            image=env.get("MCPGW_E2E_IMAGE") or cls.image,
            peer_image=env.get("MCPGW_E2E_PEER_IMAGE") or cls.peer_image,
            base_image=env.get("MCPGW_E2E_BASE_IMAGE", ""),
            peer_base_image=env.get("MCPGW_E2E_PEER_BASE_IMAGE", ""),
            keep=env.get("MCPGW_E2E_KIND_KEEP", "") in ("1", "true", "yes"),
            callback_port=int(env.get("MCPGW_E2E_CALLBACK_PORT") or cls.callback_port),
        )


def run(*argv: str, timeout: float = STEP_TIMEOUT, input: str | None = None) -> str:
    """Run one setup step; a failure raises SetupError naming the step and its stderr."""
    print(f"[e2e kind] {' '.join(argv[:4])}", flush=True)
    done = subprocess.run(
        list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise SetupError(
            f"`{' '.join(argv[:4])}` failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout


@dataclass
class KindCluster(Cluster):
    kubeconfig: Path
    issuer: str
    start_url: str
    public_url: str
    name: str = "kind"
    user_header: str = USER_HEADER
    refresh_tick_seconds: float = 10.0  # the operator's default MCPGW_TIMER_SECONDS

    def kubectl_run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def gateway_spec(self) -> JSON:
        # The issuer is given: no demo MCP server runs in the cluster (the image holds no tests),
        # so the RFC 9728 hop is left to the local backend. The URL is only the RFC 8707 resource.
        return {
            "url": "http://demo-mcp.invalid/mcp",
            "oauth": {"issuer": self.issuer, "scopes": ["mcp:tools"]},
        }

    def component_logs(self) -> str:
        parts = []
        for selector in (
            "app.kubernetes.io/component=operator",
            f"app.kubernetes.io/instance={CALLBACK}",
        ):
            got = self.kubectl_run(
                "logs", "-n", SYSTEM_NAMESPACE, "-l", selector, "--tail=-1", "--prefix"
            )
            parts.append(got.stdout)
        return "\n".join(parts)


def _ensure_cluster(settings: KindSettings, kubeconfig: Path) -> bool:
    """Create the cluster unless it exists; True when this run created it."""
    existing = run("kind", "get", "clusters").split()
    created = settings.cluster not in existing
    if created:
        run("kind", "create", "cluster", "--name", settings.cluster, "--wait", "180s")
    kubeconfig.write_text(run("kind", "get", "kubeconfig", "--name", settings.cluster))
    kubeconfig.chmod(0o600)
    return created


def _build(repository: str, context: Path, *args: str) -> str:
    """Build an image and tag it by content, so a reused cluster rolls out a changed build."""
    run("docker", "build", "-t", f"{repository}:e2e", *args, str(context), timeout=BUILD_TIMEOUT)
    image_id = run("docker", "image", "inspect", "-f", "{{.Id}}", f"{repository}:e2e").strip()
    tagged = f"{repository}:e2e-{image_id.removeprefix('sha256:')[:12]}"
    run("docker", "tag", f"{repository}:e2e", tagged)
    return tagged


def _build_and_load(settings: KindSettings) -> tuple[str, str]:
    """Returns the (project, peer) image references loaded into the cluster's node."""
    args = ["--build-arg", f"BASE_IMAGE={settings.base_image}"] if settings.base_image else []
    node = settings.peer_base_image
    peer_args = ["--build-arg", f"NODE_IMAGE={node}"] if node else []
    images = (
        _build(settings.image, REPO, *args),
        _build(settings.peer_image, PEER_DIR, *peer_args),
    )
    for image in images:
        run("kind", "load", "docker-image", image, "--name", settings.cluster)
    return images


def _kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> str:
    return run("kubectl", "--kubeconfig", str(kubeconfig), *args, input=input)


def _wait_for_callback(kubeconfig: Path, image: str) -> None:
    """The operator (re)writes the callback Deployment after it starts: wait until it runs
    `image`, then for its rollout."""
    deadline = time.monotonic() + 180
    current = ""
    while current != image:
        if time.monotonic() > deadline:
            raise SetupError(f"deployment {CALLBACK} runs {current or 'nothing'}, not {image}")
        time.sleep(2)
        got = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), "get", "deployment", CALLBACK,
             "-n", SYSTEM_NAMESPACE, "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        current = got.stdout.strip() if got.returncode == 0 else ""
    _kubectl(kubeconfig, "rollout", "status", f"deployment/{CALLBACK}", "-n", SYSTEM_NAMESPACE,
             "--timeout=300s")  # fmt: skip


def _start_peer(image: str, kubeconfig: Path) -> str:
    """Deploy the peer on the node's network; returns its issuer URL."""
    manifests = peer_manifests(image)
    _kubectl(kubeconfig, "apply", "-f", "-", input=json.dumps(manifests))
    _kubectl(kubeconfig, "rollout", "status", "deployment/oidc-peer", "-n", PEER_NAMESPACE,
             "--timeout=180s")  # fmt: skip
    host = _kubectl(
        kubeconfig, "get", "pods", "-n", PEER_NAMESPACE, "-l", "app=oidc-peer",
        "-o", "jsonpath={.items[0].status.hostIP}",
    ).strip()  # fmt: skip
    if not host:
        raise SetupError("the oidc peer pod has no host IP")
    deadline = time.monotonic() + 60
    while not port_open(PEER_PORT, host):
        if time.monotonic() > deadline:
            raise SetupError(
                f"the oidc peer at {host}:{PEER_PORT} is not reachable from here "
                "(kind node addresses are reachable from the host on Linux only)"
            )
        time.sleep(1)
    return f"http://{host}:{PEER_PORT}{PEER_ISSUER_PATH}"


def _port_forward(kubeconfig: Path, port: int, workdir: Path) -> ManagedProcess:
    ensure_port_free(port, "the callback port-forward", "or set MCPGW_E2E_CALLBACK_PORT")
    forward = ManagedProcess(
        name="port-forward-callback",
        argv=["kubectl", "--kubeconfig", str(kubeconfig), "port-forward", "-n",
              SYSTEM_NAMESPACE, f"svc/{CALLBACK}", f"{port}:80", "--address", "127.0.0.1"],
        log_path=workdir / "port-forward.log",
    ).start()  # fmt: skip
    forward.wait_ready(lambda: port_open(port), timeout=60)
    return forward


@contextmanager
def kind_cluster(workdir: Path) -> Iterator[KindCluster]:
    settings = KindSettings.from_env(dict(os.environ))
    kubeconfig = workdir / "kind.kubeconfig"
    with ExitStack() as stack:
        if _ensure_cluster(settings, kubeconfig) and not settings.keep:
            stack.callback(run, "kind", "delete", "cluster", "--name", settings.cluster)
        image, peer_image = _build_and_load(settings)
        issuer = _start_peer(peer_image, kubeconfig)
        public_url = f"http://127.0.0.1:{settings.callback_port}"
        values = workdir / "values.json"
        values.write_text(json.dumps(chart_values(image, public_url)))
        run("helm", "upgrade", "--install", RELEASE, str(REPO / "charts" / "mcpgw-operator"),
            "--kubeconfig", str(kubeconfig), "--namespace", SYSTEM_NAMESPACE,
            "--create-namespace", "--values", str(values), "--wait", "--timeout", "5m")  # fmt: skip
        _wait_for_callback(kubeconfig, image)
        forward = _port_forward(kubeconfig, settings.callback_port, workdir)
        stack.callback(forward.stop)
        yield KindCluster(
            kubeconfig=kubeconfig, issuer=issuer, start_url=public_url, public_url=public_url
        )
