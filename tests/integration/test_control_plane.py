"""The local control plane is a real one: CRDs, RBAC decisions and garbage collection work."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.accounts import service_account_kubeconfig
from tests.support.control_plane import REPO, ControlPlane

pytestmark = pytest.mark.integration

CRD_DIR = REPO / "crds"


def _ok(result: object) -> str:
    assert getattr(result, "returncode", 1) == 0, getattr(result, "stderr", "")
    return str(getattr(result, "stdout", ""))


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_server_reports_stamped_version(control_plane: ControlPlane) -> None:
    version = json.loads(_ok(control_plane.kubectl_run("version", "-o", "json")))
    assert version["serverVersion"]["gitVersion"].startswith("v1.36.")
    assert version["serverVersion"]["minor"] == "36"


def test_crd_applies_and_custom_objects_round_trip(
    control_plane: ControlPlane, namespace: str
) -> None:
    _ok(control_plane.kubectl_run("apply", "--server-side", "-f", str(CRD_DIR)))
    _ok(
        control_plane.kubectl_run(
            "wait", "--for=condition=Established", "--timeout=60s",
            "crd/mcpgateways.mcpgw.dev",
        )
    )  # fmt: skip
    manifest = {
        "apiVersion": "mcpgw.dev/v1alpha1",
        "kind": "MCPGateway",
        "metadata": {"name": "first", "namespace": namespace},
        "spec": {"url": "https://mcp.example.test/mcp"},
    }
    _ok(control_plane.kubectl_run("create", "-f", "-", input=json.dumps(manifest)))
    listed = json.loads(
        _ok(control_plane.kubectl_run("get", "mcpgw", "-n", namespace, "-o", "json"))
    )
    assert [item["metadata"]["name"] for item in listed["items"]] == ["first"]


def test_rbac_decides_for_a_service_account(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(control_plane, namespace, "probe", tmp_path / "kc")

    def can_i() -> str:
        result = control_plane.kubectl_run(
            "auth", "can-i", "list", "secrets", "-n", namespace, kubeconfig=kubeconfig
        )
        return result.stdout.strip()

    assert can_i() == "no"
    _ok(
        control_plane.kubectl_run(
            "create", "role", "secret-reader", "--verb=list", "--resource=secrets", "-n", namespace
        )
    )
    _ok(
        control_plane.kubectl_run(
            "create", "rolebinding", "probe-reads-secrets", "--role=secret-reader",
            f"--serviceaccount={namespace}:probe", "-n", namespace,
        )
    )  # fmt: skip
    _wait(lambda: can_i() == "yes", 30, "the RoleBinding to take effect")
    # The token really authenticates as the ServiceAccount: reads work, writes still do not.
    _ok(control_plane.kubectl_run("get", "secrets", "-n", namespace, kubeconfig=kubeconfig))
    denied = control_plane.kubectl_run(
        "create", "secret", "generic", "nope", "-n", namespace, kubeconfig=kubeconfig
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_garbage_collection_follows_owner_references(
    control_plane: ControlPlane, namespace: str
) -> None:
    _ok(control_plane.kubectl_run("create", "configmap", "owner", "-n", namespace))
    uid = _ok(
        control_plane.kubectl_run(
            "get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
        )
    )
    child = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "child",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
        "stringData": {"k": "v"},
    }
    _ok(control_plane.kubectl_run("create", "-f", "-", input=json.dumps(child)))
    _ok(control_plane.kubectl_run("delete", "configmap", "owner", "-n", namespace))

    def child_gone() -> bool:
        got = control_plane.kubectl_run("get", "secret", "child", "-n", namespace)
        return got.returncode != 0 and "NotFound" in got.stderr

    _wait(child_gone, 60, "the garbage collector to delete the owned Secret")
