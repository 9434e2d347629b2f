"""The Helm chart: lint, render, server-side dry run, schema and validation, and the settings
it hands the operator, checked with the real helm and the real API server."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from callback_service.settings import CallbackSettings
from mcpgw_operator import crd
from mcpgw_operator.callback_manifests import desired_deployment
from mcpgw_operator.settings import OperatorSettings
from tests.support.control_plane import ControlPlane
from tests.support.helm_chart import (
    CHART,
    DEFAULT_VALUES,
    MAXIMAL_VALUES,
    Rendered,
    env_of,
    helm,
    template,
)

pytestmark = pytest.mark.integration
SYSTEM = "mcpgw-system"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
# Rendered by the chart, not yet read by the operator: mounting a Redis CA into the callback
# pods needs operator settings of these names (see the chart's redis.external.tls.caSecret).
# The smallest ServiceMonitor CRD that lets the API server accept one (the real one is large).
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ServiceMonitor",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def _kubectl_ok(cp: ControlPlane, *args: str, input: str | None = None) -> str:
    result = cp.kubectl_run(*args, input=input)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def _ensure_namespace(cp: ControlPlane, name: str) -> None:
    result = cp.kubectl_run("create", "namespace", name)
    assert result.returncode == 0 or "already exists" in result.stderr, result.stderr


@pytest.fixture
def second_namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    _ensure_namespace(control_plane, name)
    yield name
    control_plane.kubectl_run("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def service_monitor_crd(control_plane: ControlPlane) -> Iterator[None]:
    _kubectl_ok(control_plane, "apply", "-f", "-", input=json.dumps(SERVICE_MONITOR_CRD))
    _kubectl_ok(
        control_plane,
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
    )  # fmt: skip
    yield
    control_plane.kubectl_run("delete", "crd", "servicemonitors.monitoring.coreos.com")


def _dry_run(cp: ControlPlane, rendered: Rendered) -> list[str]:
    """Apply with --dry-run=server; the API server validates every object and its schema."""
    out = _kubectl_ok(cp, "apply", "--dry-run=server", "-f", "-", input=rendered.stdout)
    return [line for line in out.splitlines() if line.endswith("(server dry run)")]


@pytest.mark.parametrize("values", [DEFAULT_VALUES, MAXIMAL_VALUES], ids=["default", "maximal"])
def test_helm_lint(control_plane: ControlPlane, values: Any) -> None:
    result = helm(control_plane, "lint", str(CHART), "--strict", "--values", str(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_default_render_is_accepted_by_the_api_server(control_plane: ControlPlane) -> None:
    _ensure_namespace(control_plane, SYSTEM)
    rendered = template(control_plane, values_files=(DEFAULT_VALUES,))
    kinds = sorted(doc["kind"] for doc in rendered.documents)
    assert kinds == sorted(
        ["CustomResourceDefinition", "ServiceAccount", "ServiceAccount", "ClusterRole",
         "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "Role", "RoleBinding",
         "Deployment", "Deployment", "Service", "PodDisruptionBudget"]
    )  # fmt: skip
    applied = _dry_run(control_plane, rendered)
    assert len(applied) == len(rendered.documents), applied


def test_bundled_redis_with_every_option_is_accepted_by_the_api_server(
    control_plane: ControlPlane,
) -> None:
    _ensure_namespace(control_plane, SYSTEM)
    rendered = template(
        control_plane,
        values={
            "networkPolicy.enabled": True,
            "redis.bundled.pdb.enabled": True,
            "callback.ingress": {"enabled": True, "host": "auth.example.com"},
            "callback.trustedProxies": ["10.0.0.0/8"],
        },
    )
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered.documents}
    assert {("NetworkPolicy", "mcpgw-redis"), ("PodDisruptionBudget", "mcpgw-redis")} <= names
    applied = _dry_run(control_plane, rendered)
    assert len(applied) == len(rendered.documents), applied


def test_maximal_render_is_accepted_by_the_api_server(
    control_plane: ControlPlane, namespace: str, second_namespace: str, service_monitor_crd: None
) -> None:
    _ensure_namespace(control_plane, SYSTEM)
    rendered = template(
        control_plane,
        values_files=(MAXIMAL_VALUES,),
        # The file's own namespaces, swapped for this test's so nothing is shared.
        values={"operator.watchNamespaces": [namespace, second_namespace]},
    )
    kinds = {doc["kind"] for doc in rendered.documents}
    assert {"Ingress", "NetworkPolicy", "ServiceMonitor", "PodDisruptionBudget"} <= kinds
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in rendered.of_kind("Role")}
    assert {(namespace, "mcpgw-operator"), (second_namespace, "mcpgw-operator")} <= roles
    applied = _dry_run(control_plane, rendered)
    assert len(applied) == len(rendered.documents), applied


def test_crd_template_is_the_generated_crd_kept_on_uninstall(control_plane: ControlPlane) -> None:
    (rendered,) = template(control_plane).of_kind("CustomResourceDefinition")
    generated = crd.crd_manifest()
    assert rendered["spec"] == generated["spec"]
    assert rendered["metadata"]["name"] == generated["metadata"]["name"]
    assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    dropped = template(control_plane, values={"crds.keep": False}).of_kind(
        "CustomResourceDefinition"
    )
    assert "annotations" not in dropped[0]["metadata"]
    assert (
        template(control_plane, values={"crds.enabled": False}).of_kind("CustomResourceDefinition")
        == []
    )


def test_operator_deployment_is_single_restricted_and_probed(control_plane: ControlPlane) -> None:
    deployment = template(control_plane).one("Deployment", "mcpgw-operator", SYSTEM)
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "mcpgw-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    (container,) = pod["containers"]
    assert container["args"][0] == "operator"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"]["limits"]["memory"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "32Mi"}} in pod["volumes"]
    (pod_ns,) = [e for e in container["env"] if e["name"] == "POD_NAMESPACE"]
    assert pod_ns["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def _settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> OperatorSettings:
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("MCPGW_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return OperatorSettings()


def _callback_settings(
    monkeypatch: pytest.MonkeyPatch, container: dict[str, Any]
) -> CallbackSettings:
    env: dict[str, str] = {}
    for entry in container["env"]:
        # A URL behind a secretKeyRef is resolved by the kubelet; any URL stands in for it here.
        env[entry["name"]] = entry.get("value", "rediss://redis.invalid:6380/0")
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return CallbackSettings()


@pytest.mark.parametrize(
    ("values_file", "expected"),
    [
        (DEFAULT_VALUES, {"namespaces": [], "replicas": 2, "public_url": "http://127.0.0.1:18080",
                          "redis_url": "redis://mcpgw-redis.mcpgw-system.svc:6379/0",
                          "redis_secret": "", "proxies": []}),
        (MAXIMAL_VALUES, {"namespaces": ["team-a", "team-b"], "replicas": 3,
                          "public_url": "https://mcp-auth.example.com", "redis_url": "",
                          "redis_secret": "mcpgw-redis-url",
                          "proxies": ["10.0.0.0/8", "fd00::/8"]}),
    ],
    ids=["default", "maximal"],
)  # fmt: skip
def test_rendered_env_is_what_operator_and_callback_accept(
    control_plane: ControlPlane,
    monkeypatch: pytest.MonkeyPatch,
    values_file: Any,
    expected: dict[str, Any],
) -> None:
    deployment = template(control_plane, values_files=(values_file,)).one(
        "Deployment", "mcpgw-operator", SYSTEM
    )
    env = env_of(deployment, "operator")
    unknown = {
        name
        for name in env
        if name.startswith("MCPGW_") and name[6:].lower() not in OperatorSettings.model_fields
    }
    assert not unknown, f"the operator has no setting for {unknown}"

    settings = _settings_from_env(monkeypatch, {**env, "POD_NAMESPACE": SYSTEM})
    assert settings.namespaces == expected["namespaces"]
    assert settings.callback_namespace == SYSTEM
    assert settings.callback_name == "mcpgw-callback"
    assert settings.callback_service_account == "mcpgw-callback"
    assert settings.callback_replicas == expected["replicas"]
    assert settings.callback_public_url == expected["public_url"]
    assert settings.callback_redis_url == expected["redis_url"]
    assert settings.callback_redis_url_secret == expected["redis_secret"]
    assert settings.redis_configured
    values = yaml.safe_load(values_file.read_text()) or {}
    chart_defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    resources = (values.get("callback") or {}).get("resources") or chart_defaults["callback"][
        "resources"
    ]
    assert settings.callback_resources == resources

    # The operator builds the callback Deployment from these settings; the service must accept
    # what it is given (trusted proxies, auth mode with its replica count, public URL).
    callback_container = desired_deployment(settings)["spec"]["template"]["spec"]["containers"][0]
    callback = _callback_settings(monkeypatch, callback_container)
    assert [str(net) for net in callback.trusted_proxies] == expected["proxies"]
    assert callback.public_url == expected["public_url"]
    assert callback.replicas == expected["replicas"]


@pytest.mark.parametrize(
    ("values", "public_url"),
    [
        ({"callback.ingress": {"enabled": True, "host": "auth.example.com",
                               "tls": {"enabled": True, "secretName": "t"}}},
         "https://auth.example.com"),
        ({"callback.ingress": {"enabled": True, "host": "auth.example.com"}},
         "http://auth.example.com"),
        ({"callback.publicURL": "https://auth.example.com/mcp/",
          "callback.ingress": {"enabled": True, "host": "auth.example.com"}},
         "https://auth.example.com/mcp"),
    ],
    ids=["ingress-tls", "ingress-plain", "explicit-wins"],
)  # fmt: skip
def test_public_url_derivation(
    control_plane: ControlPlane, values: dict[str, object], public_url: str
) -> None:
    rendered = template(control_plane, values=values)
    env = env_of(rendered.one("Deployment", "mcpgw-operator"), "operator")
    assert env["MCPGW_CALLBACK_PUBLIC_URL"] == public_url
    (ingress,) = rendered.of_kind("Ingress")
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/oauth"
    assert path["backend"]["service"] == {"name": "mcpgw-callback", "port": {"name": "http"}}


def test_service_monitor_follows_the_cluster_or_the_switch(control_plane: ControlPlane) -> None:
    assert template(control_plane).of_kind("ServiceMonitor") == []
    (found,) = template(control_plane, api_versions=(SERVICE_MONITOR_API,)).of_kind(
        "ServiceMonitor"
    )
    assert found["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert found["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "mcpgw-callback",
        "app.kubernetes.io/instance": "mcpgw-callback",
    }
    assert len(template(control_plane, values={"serviceMonitor.enabled": True}).of_kind(
        "ServiceMonitor"
    )) == 1  # fmt: skip


@pytest.mark.parametrize(
    ("values", "pdbs"),
    [
        ({}, {"mcpgw-callback"}),
        ({"callback.replicas": 1}, set()),
        ({"callback.pdb.enabled": False}, set()),
        ({"redis.bundled.pdb.enabled": True}, {"mcpgw-callback", "mcpgw-redis"}),
        ({"redis.mode": "external", "redis.external.url": "redis://r:6379/0",
          "redis.bundled.pdb.enabled": True}, {"mcpgw-callback"}),
    ],
    ids=["default", "one-replica", "disabled", "redis-opt-in", "external-redis"],
)  # fmt: skip
def test_pod_disruption_budgets(
    control_plane: ControlPlane, values: dict[str, object], pdbs: set[str]
) -> None:
    rendered = template(control_plane, values=values)
    assert {doc["metadata"]["name"] for doc in rendered.of_kind("PodDisruptionBudget")} == pdbs


def test_bundled_redis_and_its_network_policy(control_plane: ControlPlane) -> None:
    rendered = template(control_plane, values={"networkPolicy.enabled": True})
    redis = rendered.one("Deployment", "mcpgw-redis", SYSTEM)
    assert redis["spec"]["replicas"] == 1
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert rendered.one("Service", "mcpgw-redis", SYSTEM)["spec"]["ports"][0]["port"] == 6379
    policy = rendered.one("NetworkPolicy", "mcpgw-redis", SYSTEM)
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mcpgw-callback",
                                         "app.kubernetes.io/instance": "mcpgw-callback"}}}
    ]  # fmt: skip
    assert policy["spec"]["egress"] == []
    callback = rendered.one("NetworkPolicy", "mcpgw-callback", SYSTEM)
    egress_ports = {p["port"] for r in callback["spec"]["egress"] for p in r.get("ports", [])}
    assert {53, 443, 6379} <= egress_ports


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"callbak": {"replicas": 3}}, "additional properties 'callbak' not allowed"),
        ({"callback.replicaz": 3}, "additional properties 'replicaz' not allowed"),
        ({"redis.external.tls.caSecret.nam": "x"}, "additional properties 'nam' not allowed"),
    ],
    ids=["top-level", "nested", "deepest"],
)
def test_schema_rejects_unknown_keys(
    control_plane: ControlPlane, values: dict[str, object], message: str
) -> None:
    rendered = template(control_plane, values=values)
    assert rendered.returncode != 0
    assert message in rendered.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rbac.scope": "wide"}, "value must be one of 'cluster', 'namespaced'"),
        ({"redis.mode": "memory"}, "value must be one of 'bundled', 'external'"),
        ({"callback.authMode": "none"}, "value must be one of 'proxy-header', 'dev-insecure'"),
        ({"callback.replicas": "two"}, "/callback/replicas"),
    ],
    ids=["rbac-scope", "redis-mode", "auth-mode", "replicas-type"],
)
def test_schema_rejects_bad_values(
    control_plane: ControlPlane, values: dict[str, object], message: str
) -> None:
    rendered = template(control_plane, values=values)
    assert rendered.returncode != 0
    assert message in rendered.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rbac.scope": "namespaced"}, "rbac.scope=namespaced needs operator.watchNamespaces"),
        ({"callback.ingress.enabled": True}, "ingress.enabled needs callback.ingress.host"),
        ({"callback.authMode": "dev-insecure"}, "refuses it with more than one replica"),
        ({"redis.mode": "external"}, "redis.mode=external needs redis.external.url"),
        ({"redis.mode": "external", "redis.external.url": "redis://r:6379/0",
          "redis.external.tls.enabled": True}, "redis.external.tls.enabled needs a rediss:// URL"),
        ({"callback.publicURL": "https://a.example.com",
          "callback.ingress": {"enabled": True, "host": "b.example.com"}},
         "differs from callback.ingress.host"),
        ({"callback.replicas": 2, "callback.pdb.minAvailable": 2},
         "callback.pdb.minAvailable must be below callback.replicas"),
    ],
    ids=["namespaced-without-namespaces", "ingress-without-host", "dev-insecure-replicas",
         "external-without-url", "tls-without-rediss", "host-mismatch", "pdb-blocks-drains"],
)  # fmt: skip
def test_invalid_combinations_are_refused_with_a_reason(
    control_plane: ControlPlane, values: dict[str, object], message: str
) -> None:
    rendered = template(control_plane, values=values)
    assert rendered.returncode != 0
    assert message in rendered.stderr


def test_redis_password_in_values_is_refused_without_echoing_it(
    control_plane: ControlPlane,
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    rendered = template(
        control_plane,
        values={"redis.mode": "external", "redis.external.url": f"redis://:{password}@r:6379/0"},
    )
    assert rendered.returncode != 0
    assert "redis.external.existingSecret" in rendered.stderr
    assert password not in rendered.stderr + rendered.stdout
