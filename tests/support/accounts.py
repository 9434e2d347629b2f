"""ServiceAccount kubeconfigs from TokenRequest tokens, so components run under their own RBAC."""

from __future__ import annotations

from pathlib import Path

from tests.support.control_plane import ControlPlane, write_kubeconfig
from tests.support.processes import SetupError


def service_account_kubeconfig(
    cp: ControlPlane,
    namespace: str,
    name: str,
    path: Path,
    *,
    duration: str = "2h",
) -> Path:
    """Create the ServiceAccount if absent, mint a token for it and write a kubeconfig.

    The token comes from the TokenRequest API (`kubectl create token`), which needs no
    controller-manager, so this works on the bare API server too.
    """
    created = cp.kubectl_run("create", "serviceaccount", name, "-n", namespace)
    if created.returncode != 0 and "already exists" not in created.stderr.lower():
        raise SetupError(f"creating ServiceAccount {namespace}/{name} failed: {created.stderr}")
    minted = cp.kubectl_run("create", "token", name, "-n", namespace, "--duration", duration)
    if minted.returncode != 0:
        raise SetupError(f"TokenRequest for {namespace}/{name} failed: {minted.stderr}")
    assert cp.pki is not None
    return write_kubeconfig(
        path,
        cp.server,
        cp.pki.ca_cert,
        user=f"system:serviceaccount:{namespace}:{name}",
        token=minted.stdout.strip(),
        namespace=namespace,
    )
