"""The kind backend's builders against the real chart and API server, so what cannot run here
(kind itself) at least starts from values the chart accepts and objects the API server admits."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.kind_manifests import chart_values, peer_manifests
from tests.support.control_plane import REPO, ControlPlane

pytestmark = pytest.mark.integration
IMAGE = "mcpgw:e2e-0123456789ab"
PUBLIC_URL = "http://127.0.0.1:18080"
CHART = REPO / "charts" / "mcpgw-operator"


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_chart_takes_the_kind_values(control_plane: ControlPlane, tmp_path: Path) -> None:
    values = tmp_path / "values.json"
    values.write_text(json.dumps(chart_values(IMAGE, PUBLIC_URL)))
    rendered = subprocess.run(
        [str(control_plane.assets / "helm"), "template", "mcpgw", str(CHART),
         "--namespace", "mcpgw-system", "--values", str(values)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    operator = deployments["mcpgw-operator"]
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    env = _env(operator)
    # What kind_cluster.py relies on: the operator runs the callback as `mcpgw-callback` with
    # the loaded image, two replicas, the bundled Redis and the port-forward as trusted proxy.
    assert env["MCPGW_CALLBACK_NAME"] == "mcpgw-callback"
    assert env["MCPGW_CALLBACK_IMAGE"] == IMAGE
    assert env["MCPGW_CALLBACK_IMAGE_PULL_POLICY"] == "Never"
    assert env["MCPGW_CALLBACK_PUBLIC_URL"] == PUBLIC_URL
    assert env["MCPGW_CALLBACK_REPLICAS"] == "2"
    assert "127.0.0.1/32" in env["MCPGW_CALLBACK_TRUSTED_PROXIES"].split(",")
    assert env["MCPGW_CALLBACK_REDIS_URL"].startswith("redis://mcpgw-redis.mcpgw-system.svc")
    assert "mcpgw-redis" in deployments


def test_the_api_server_admits_the_peer_objects(
    control_plane: ControlPlane, namespace: str
) -> None:
    doc = peer_manifests("mcpgw-oidc-peer:e2e-0123456789ab")
    deployment = next(item for item in doc["items"] if item["kind"] == "Deployment")
    deployment["metadata"]["namespace"] = namespace
    applied = control_plane.kubectl_run(
        "apply", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(deployment)
    )
    assert applied.returncode == 0, applied.stderr
    admitted = json.loads(applied.stdout)["spec"]["template"]["spec"]
    assert admitted["hostNetwork"] is True
    env = admitted["containers"][0]["env"]
    assert [e["name"] for e in env][:2] == ["HOST_IP", "OIDC_PEER_HOST"]
