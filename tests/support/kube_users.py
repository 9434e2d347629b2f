"""Kubernetes users for tests: a ServiceAccount, its token and kubeconfig, and RBAC on gateways."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.accounts import service_account_kubeconfig
from tests.support.control_plane import ControlPlane


@dataclass
class KubeUser:
    """A ServiceAccount in the test's namespace, with its token and kubeconfig."""

    name: str
    username: str
    token: str
    kubeconfig: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


def gateway_user(
    cp: ControlPlane,
    workdir: Path,
    namespace: str,
    name: str,
    *,
    verbs: list[str],
    gateways: list[str],
) -> KubeUser:
    """A ServiceAccount bound to a Role with `verbs` on the named MCPGateways (none: no Role)."""
    path = workdir / f"{namespace}-{name}.kubeconfig"
    service_account_kubeconfig(cp, namespace, name, path, duration="1h")
    if verbs:
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": f"{name}-gateways", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["mcpgw.dev"],
                    "resources": ["mcpgateways"],
                    "resourceNames": gateways,
                    "verbs": verbs,
                }
            ],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{name}-gateways", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": f"{name}-gateways",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }
        for manifest in (role, binding):
            made = cp.kubectl_run("create", "-f", "-", input=json.dumps(manifest))
            assert made.returncode == 0, made.stderr
    config = yaml.safe_load(path.read_text())
    token = config["users"][0]["user"]["token"]
    return KubeUser(name, f"system:serviceaccount:{namespace}:{name}", token, path)
