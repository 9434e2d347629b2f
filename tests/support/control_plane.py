"""A real local control plane: etcd, kube-apiserver and kube-controller-manager as processes."""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.pki import Pki, make_pki
from tests.support.processes import ManagedProcess, SetupError, ensure_port_free, free_port

REPO = Path(__file__).resolve().parents[2]
ASSETS_SCRIPT = REPO / "hack" / "control-plane-assets.sh"
SERVICE_CIDR = "10.0.0.0/24"
GC_CONTROLLERS = "garbage-collector-controller,namespace-controller,serviceaccount-controller"


def find_assets() -> Path:
    """The folder holding kube-apiserver, etcd and kubectl: KUBEBUILDER_ASSETS or our build."""
    if not ASSETS_SCRIPT.exists():
        raise SetupError(f"{ASSETS_SCRIPT} is missing; run from a checkout of the project")
    result = subprocess.run(
        ["bash", str(ASSETS_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        raise SetupError(
            "building the control-plane assets failed (see the [assets] lines above); "
            "set KUBEBUILDER_ASSETS to a folder with kube-apiserver, etcd and kubectl to use yours"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def write_kubeconfig(
    path: Path,
    server: str,
    ca_cert: Path,
    *,
    user: str,
    token: str | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    namespace: str | None = None,
) -> Path:
    """A self-contained kubeconfig (data inlined) for one user."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    credentials: dict[str, str] = {}
    if token is not None:
        credentials["token"] = token
    if client_cert is not None and client_key is not None:
        credentials["client-certificate-data"] = b64(client_cert)
        credentials["client-key-data"] = b64(client_key)
    context: dict[str, str] = {"cluster": "mcpgw-local", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "mcpgw-local",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_cert)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) on loopback, RBAC enabled."""

    workdir: Path
    assets: Path
    apiserver_port: int = 0
    etcd_port: int = 0
    with_controller_manager: bool = True
    detach: bool = False
    audit_log: Path | None = None  # when set, every request's metadata is logged there
    processes: list[ManagedProcess] = field(default_factory=list)
    pki: Pki | None = None

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def kubectl(self) -> Path:
        return self.assets / "kubectl"

    def start(self) -> ControlPlane:
        for binary in ("kube-apiserver", "etcd", "kubectl"):
            if not (self.assets / binary).exists():
                raise SetupError(f"{self.assets} has no {binary}; run hack/control-plane-assets.sh")
        hint = "stop what uses it, or choose another port"
        if self.apiserver_port:
            ensure_port_free(self.apiserver_port, "kube-apiserver", hint)
        else:
            self.apiserver_port = free_port()
        if self.etcd_port:
            ensure_port_free(self.etcd_port, "etcd", hint)
        else:
            self.etcd_port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(self.workdir / "pki")
        self._start_etcd()
        self._start_apiserver()
        write_kubeconfig(
            self.admin_kubeconfig,
            self.server,
            self.pki.ca_cert,
            user="admin",
            client_cert=self.pki.admin_cert,
            client_key=self.pki.admin_key,
        )
        if self.with_controller_manager and (self.assets / "kube-controller-manager").exists():
            self._start_controller_manager()
        return self

    def _proc(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(
            name=name, argv=argv, log_path=self.workdir / f"{name}.log", detach=self.detach
        ).start()
        self.processes.append(proc)
        return proc

    def _start_etcd(self) -> None:
        data = self.workdir / "etcd-data"
        shutil.rmtree(data, ignore_errors=True)
        peer_port = free_port()
        url = f"http://127.0.0.1:{self.etcd_port}"
        proc = self._proc(
            "etcd",
            [
                str(self.assets / "etcd"),
                "--data-dir", str(data),
                "--listen-client-urls", url,
                "--advertise-client-urls", url,
                "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level", "warn",
            ],
        )  # fmt: skip
        proc.wait_ready(lambda: _http_ok(f"{url}/health"), timeout=30)

    def _start_apiserver(self) -> None:
        assert self.pki is not None
        p = self.pki
        proc = self._proc(
            "kube-apiserver",
            [
                str(self.assets / "kube-apiserver"),
                "--etcd-servers", f"http://127.0.0.1:{self.etcd_port}",
                "--bind-address", "127.0.0.1",
                "--advertise-address", "127.0.0.1",
                "--secure-port", str(self.apiserver_port),
                "--tls-cert-file", str(p.serving_cert),
                "--tls-private-key-file", str(p.serving_key),
                "--client-ca-file", str(p.ca_cert),
                "--service-account-key-file", str(p.sa_pub),
                "--service-account-signing-key-file", str(p.sa_key),
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--api-audiences", "https://kubernetes.default.svc",
                "--authorization-mode", "RBAC",
                "--service-cluster-ip-range", SERVICE_CIDR,
                "--disable-admission-plugins", "ServiceAccount",
                "--allow-privileged=false",
                "--cert-dir", str(self.workdir / "apiserver-certs"),
                "--v", "0",
                *self._audit_args(),
            ],
        )  # fmt: skip
        ctx = ssl.create_default_context(cafile=str(p.ca_cert))
        ctx.load_cert_chain(str(p.admin_cert), str(p.admin_key))
        proc.wait_ready(lambda: _http_ok(f"{self.server}/readyz", ctx), timeout=90)

    def _audit_args(self) -> list[str]:
        if self.audit_log is None:
            return []
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
            "rules:\n  - level: Metadata\n"
        )
        return [
            "--audit-policy-file", str(policy),
            "--audit-log-path", str(self.audit_log),
            "--audit-log-format", "json",
            "--audit-log-mode", "blocking",
        ]  # fmt: skip

    def _start_controller_manager(self) -> None:
        assert self.pki is not None
        p = self.pki
        proc = self._proc(
            "kube-controller-manager",
            [
                str(self.assets / "kube-controller-manager"),
                "--kubeconfig", str(self.admin_kubeconfig),
                "--controllers", GC_CONTROLLERS,
                "--leader-elect=false",
                "--secure-port", "0",
                "--root-ca-file", str(p.ca_cert),
                "--service-account-private-key-file", str(p.sa_key),
                "--service-cluster-ip-range", SERVICE_CIDR,
                "--concurrent-gc-syncs", "5",
                "--v", "0",
            ],
        )  # fmt: skip
        proc.wait_ready(lambda: True, timeout=5)

    def kubectl_run(
        self, *args: str, kubeconfig: Path | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(kubeconfig or self.admin_kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def env(self) -> dict[str, Any]:
        return {"KUBECONFIG": str(self.admin_kubeconfig)}


def _http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False


def default_workdir() -> Path:
    return Path(os.environ.get("MCPGW_TEST_WORKDIR", "/tmp/mcpgw-test"))
