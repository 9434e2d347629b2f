"""Session fixtures for the real parts: control plane, namespaces, service accounts."""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.accounts import service_account_kubeconfig
from tests.support.control_plane import REPO, ControlPlane, default_workdir, find_assets
from tests.support.oidc_peer import OIDCPeer, start_oidc_peer
from tests.support.operator_process import (
    OPERATOR_SA,
    SYSTEM_NAMESPACE,
    install_operator_rbac,
    start_operator,
)
from tests.support.processes import ManagedProcess

#: The callback service's public URL the operator is given; the redirect URI derives from it.
CALLBACK = "http://127.0.0.1:18080"
REDIRECT_URI = f"{CALLBACK}/oauth/callback"

_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, not in tests/e2e/conftest.py: pytest takes options only from conftests it
    # loads before collecting, and a run from the repository root would not load that one.
    parser.addoption(
        "--cluster",
        choices=("local", "kind"),
        default=None,
        help="cluster backend of the e2e suite (tests/e2e); default $MCPGW_E2E_CLUSTER or local",
    )


@pytest.fixture(scope="session")
def workdir() -> Path:
    path = default_workdir() / f"run-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def control_plane(workdir: Path) -> Iterator[ControlPlane]:
    # The audit log lets tests count the API requests a component made (idle resyncs: none).
    cp = ControlPlane(
        workdir=workdir / "control-plane",
        assets=find_assets(),
        audit_log=workdir / "control-plane" / "audit.log",
    ).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (the namespace controller empties it)."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())
    name = f"t{next(_counter)}-{base}"[:50].rstrip("-") + "-" + uuid.uuid4().hex[:6]
    created = control_plane.kubectl_run("create", "namespace", name)
    assert created.returncode == 0, created.stderr
    yield name
    control_plane.kubectl_run("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="session")
def oidc_peer() -> Iterator[OIDCPeer]:
    """The shared authorization server: anonymous DCR, issuer with a path (/tenant-a)."""
    with start_oidc_peer() as peer:
        yield peer


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: ControlPlane, workdir: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound by the chart's own RBAC."""
    install_operator_rbac(control_plane)
    control_plane.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
    control_plane.kubectl_run(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/mcpgateways.mcpgw.dev"
    )
    return service_account_kubeconfig(
        control_plane, SYSTEM_NAMESPACE, OPERATOR_SA, workdir / "operator.kubeconfig"
    )


@pytest.fixture
def run_operator(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., ManagedProcess]]:
    """Start the operator (as its ServiceAccount, watching this test's namespace) with extra
    MCPGW_* settings; every process started is stopped afterwards and its log tail printed."""
    started: list[ManagedProcess] = []

    def run(**env: str) -> ManagedProcess:
        proc = start_operator(
            operator_kubeconfig,
            tmp_path / f"operator-{len(started)}.log",
            namespaces=[namespace],
            callback_public_url=CALLBACK,
            extra_env=env,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.stop()
        print(f"--- {proc.log_path} ---\n{proc.tail(60)}")
