"""The generated CRD on a real API server: defaults, CEL and schema validation, printer columns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcpgw_operator.crd import DEFAULT_PATH
from tests.support.control_plane import REPO, ControlPlane

pytestmark = pytest.mark.integration


@pytest.fixture
def crd_installed(control_plane: ControlPlane) -> ControlPlane:
    for args in (
        ("apply", "--server-side", "-f", str(REPO / DEFAULT_PATH)),
        ("wait", "--for=condition=Established", "--timeout=60s", "crd/mcpgateways.mcpgw.dev"),
    ):
        result = control_plane.kubectl_run(*args)
        assert result.returncode == 0, result.stderr
    return control_plane


def _gateway(namespace: str, name: str, **spec: Any) -> str:
    manifest = {
        "apiVersion": "mcpgw.dev/v1alpha1",
        "kind": "MCPGateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": "https://mcp.example.test/mcp", **spec},
    }
    return json.dumps(manifest)


def test_defaults_are_filled_in(crd_installed: ControlPlane, namespace: str) -> None:
    created = crd_installed.kubectl_run(
        "create", "-o", "json", "-f", "-", input=_gateway(namespace, "plain")
    )
    assert created.returncode == 0, created.stderr
    spec = json.loads(created.stdout)["spec"]
    assert spec["oauth"]["registration"]["mode"] == "Auto"
    assert spec["deletionPolicy"] == "Delete"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"url": "ftp://mcp.example.test"}, "must be an http:// or https:// URL"),
        ({"oauth": {"issuer": "https://as.example.test/?x=1"}}, "no query or fragment"),
        ({"oauth": {"registration": {"mode": "PreRegistered"}}}, "requires clientSecretRef"),
        (
            {"oauth": {"registration": {"mode": "Dynamic", "clientSecretRef": {"name": "s"}}}},
            "clientSecretRef is only used with mode PreRegistered or Auto",
        ),
        (
            {"oauth": {"registration": {"mode": "PreRegistered", "clientSecretRef": {"name": "s"},
                                        "initialAccessTokenRef": {"name": "t"}}}},
            "initialAccessTokenRef is only used with mode Dynamic or Auto",
        ),
        ({"oauth": {"registration": {"mode": "Magic"}}}, "Unsupported value"),
        ({"oauth": {"scopes": ["a b"]}}, "should match"),
        ({"oauth": {"scopes": ["mcp", "mcp"]}}, "Duplicate value"),
        ({"deletionPolicy": "Keep"}, "Unsupported value"),
    ],
    ids=[
        "ftp-url", "issuer-with-query", "preregistered-without-secret", "dynamic-with-secret",
        "iat-with-preregistered", "unknown-mode", "scope-with-space", "duplicate-scope",
        "unknown-deletion-policy",
    ],
)  # fmt: skip
def test_invalid_specs_are_rejected_with_a_readable_message(
    crd_installed: ControlPlane, namespace: str, spec: dict[str, Any], message: str
) -> None:
    result = crd_installed.kubectl_run(
        "create", "-f", "-", input=_gateway(namespace, "bad", **spec)
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_status_round_trips_and_feeds_the_printer_columns(
    crd_installed: ControlPlane, namespace: str
) -> None:
    created = crd_installed.kubectl_run("create", "-f", "-", input=_gateway(namespace, "shown"))
    assert created.returncode == 0, created.stderr
    status = {
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "AwaitingAuthorization",
             "message": "waiting for a user", "lastTransitionTime": "2025-01-02T03:04:05Z",
             "observedGeneration": 1},
            {"type": "Authorized", "status": "Unknown", "reason": "AwaitingAuthorization",
             "message": "no user yet", "lastTransitionTime": "2025-01-02T03:04:05Z"},
        ],
        "discovery": {"issuer": "https://as.example.test", "hops": [
            {"url": "https://mcp.example.test/.well-known/oauth-protected-resource",
             "outcome": "ok"}]},
        "client": {"clientID": "abc123", "mode": "Dynamic"},
        "retry": {"attempts": 2, "nextRetryAt": "2025-01-02T03:04:15Z",
                  "lastErrorReason": "DiscoveryFailed"},
    }  # fmt: skip
    patched = crd_installed.kubectl_run(
        "patch", "mcpgw", "shown", "-n", namespace, "--subresource=status", "--type=merge",
        "-o", "json", "-p", json.dumps({"status": status}),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    # Stored exactly as written: no defaults added, nothing pruned.
    assert json.loads(patched.stdout)["status"] == status
    wide = crd_installed.kubectl_run("get", "mcpgateways", "shown", "-n", namespace, "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    header, row = wide.stdout.splitlines()
    assert header.split()[:6] == ["NAME", "READY", "ISSUER", "CLIENT", "AUTHORIZED", "AGE"]
    assert header.split()[6:] == ["REASON", "MESSAGE"]
    assert row.split()[:5] == ["shown", "False", "https://as.example.test", "abc123", "Unknown"]
    assert row.endswith("AwaitingAuthorization   waiting for a user")


def test_status_with_a_bad_condition_is_rejected(
    crd_installed: ControlPlane, namespace: str
) -> None:
    created = crd_installed.kubectl_run("create", "-f", "-", input=_gateway(namespace, "cond"))
    assert created.returncode == 0, created.stderr
    bad = {"conditions": [{"type": "Ready", "status": "Maybe", "reason": "x y", "message": "m",
                           "lastTransitionTime": "2025-01-02T03:04:05Z"}]}  # fmt: skip
    result = crd_installed.kubectl_run(
        "patch", "mcpgw", "cond", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": bad}),
    )  # fmt: skip
    assert result.returncode != 0
    assert "Unsupported value" in result.stderr
    assert "should match" in result.stderr
