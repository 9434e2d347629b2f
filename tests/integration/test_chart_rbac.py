"""The chart's RBAC switch: rbac.scope=namespaced grants the operator and the callback service
rights only in the watched namespaces, and the operator does its work under exactly that."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CALLBACK, REDIRECT_URI
from tests.support import gateways as gw
from tests.support.accounts import service_account_kubeconfig
from tests.support.control_plane import ControlPlane
from tests.support.helm_chart import template
from tests.support.oidc_peer import OIDCPeer
from tests.support.operator_process import SYSTEM_NAMESPACE, start_operator

pytestmark = pytest.mark.integration
RBAC_TEMPLATES = ("templates/operator-rbac.yaml", "templates/callback-rbac.yaml")
# With spec.oauth.issuer set the MCP server is never contacted; nothing listens here.
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"
OTHER_NAMESPACE = "default"


@pytest.fixture
def release(control_plane: ControlPlane, namespace: str) -> Iterator[str]:
    """A release of its own (names of ClusterRoles are global), applied with namespaced RBAC."""
    name = f"ns{uuid.uuid4().hex[:8]}"
    rendered = template(
        control_plane,
        release=name,
        namespace=SYSTEM_NAMESPACE,
        values={"rbac.scope": "namespaced", "operator.watchNamespaces": [namespace]},
        show_only=RBAC_TEMPLATES,
    )
    assert rendered.returncode == 0, rendered.stderr
    created = control_plane.kubectl_run("create", "namespace", SYSTEM_NAMESPACE)
    assert created.returncode == 0 or "already exists" in created.stderr, created.stderr
    applied = control_plane.kubectl_run("apply", "-f", "-", input=rendered.stdout)
    assert applied.returncode == 0, applied.stderr
    yield name
    control_plane.kubectl_run(
        "delete", "-f", "-", "--ignore-not-found", "--wait=false", input=rendered.stdout
    )
    control_plane.kubectl_run(
        "delete", "deployment,service,secret", "-n", SYSTEM_NAMESPACE,
        "-l", f"app.kubernetes.io/instance={name}-callback", "--wait=false",
    )  # fmt: skip


def _can(cp: ControlPlane, account: str, verb: str, resource: str, namespace: str | None) -> bool:
    args = ["auth", "can-i", verb, resource, "--as", f"system:serviceaccount:{account}"]
    args += ["-n", namespace] if namespace else []
    result = cp.kubectl_run(*args)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


def test_namespaced_rbac_grants_only_the_watched_namespaces(
    control_plane: ControlPlane,
    namespace: str,
    release: str,
    operator_kubeconfig: Path,  # installs the CRD, so kubectl resolves mcpgateways
) -> None:
    operator = f"{SYSTEM_NAMESPACE}:{release}-operator"
    callback = f"{SYSTEM_NAMESPACE}:{release}-callback"
    expected = [
        (operator, "list", "secrets", namespace, True),
        (operator, "list", "secrets", OTHER_NAMESPACE, False),
        (operator, "patch", "mcpgateways.mcpgw.dev", namespace, True),
        (operator, "patch", "mcpgateways.mcpgw.dev", OTHER_NAMESPACE, False),
        (operator, "patch", "mcpgateways.mcpgw.dev/status", namespace, True),
        (operator, "create", "events", namespace, True),
        (operator, "watch", "customresourcedefinitions.apiextensions.k8s.io", None, True),
        (operator, "create", "deployments.apps", SYSTEM_NAMESPACE, True),
        (operator, "create", "deployments.apps", namespace, False),
        (operator, "create", "secrets", SYSTEM_NAMESPACE, True),
        (callback, "get", "mcpgateways.mcpgw.dev", namespace, True),
        (callback, "get", "mcpgateways.mcpgw.dev", OTHER_NAMESPACE, False),
        (callback, "update", "secrets", namespace, True),
        (callback, "get", "secrets", OTHER_NAMESPACE, False),
        (callback, "list", "secrets", namespace, False),
        (callback, "create", "tokenreviews.authentication.k8s.io", None, True),
        (callback, "create", "subjectaccessreviews.authorization.k8s.io", None, True),
    ]
    actual = [
        (account, verb, resource, ns, _can(control_plane, account, verb, resource, ns))
        for account, verb, resource, ns, _ in expected
    ]
    assert actual == expected


def test_operator_registers_under_namespaced_rbac(
    control_plane: ControlPlane,
    namespace: str,
    release: str,
    oidc_peer: OIDCPeer,
    operator_kubeconfig: Path,  # the CRD is installed by this fixture
    tmp_path: Path,
) -> None:
    kubeconfig = service_account_kubeconfig(
        control_plane, SYSTEM_NAMESPACE, f"{release}-operator", tmp_path / "kubeconfig"
    )
    proc = start_operator(
        kubeconfig,
        tmp_path / "operator.log",
        namespaces=[namespace],
        callback_public_url=CALLBACK,
        extra_env={
            "MCPGW_CALLBACK_NAME": f"{release}-callback",
            "MCPGW_CALLBACK_SERVICE_ACCOUNT": f"{release}-callback",
        },
    )
    try:
        gw.apply(
            control_plane,
            gw.make_gateway(
                "files",
                namespace,
                UNUSED_MCP_URL,
                oauth={"issuer": oidc_peer.issuer, "registration": {"mode": "Dynamic"}},
            ),
        )
        gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
        data = gw.secret_data(control_plane, "files-oauth-client", namespace)
        assert data is not None
        assert data["redirect_uri"] == REDIRECT_URI
        # The callback objects in the release namespace come from the namespace-local Role.
        gw.wait_until(
            lambda: gw.get(control_plane, "deployment", f"{release}-callback", SYSTEM_NAMESPACE),
            30,
            "the callback Deployment",
        )
        log = proc.tail(400)
        assert "Forbidden" not in log, log
        assert " 403" not in log, log
    finally:
        proc.stop()
        print(f"--- operator log ---\n{proc.tail(60)}")
