"""Runs the real `helm` against our chart: template, lint, and the rendered documents by kind."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.control_plane import REPO, ControlPlane

CHART = REPO / "charts" / "mcpgw-operator"
MAXIMAL_VALUES = CHART / "ci" / "maximal-values.yaml"
DEFAULT_VALUES = CHART / "ci" / "default-values.yaml"
HELM_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Rendered:
    """The outcome of one `helm template`: its documents, or why it failed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def documents(self) -> list[dict[str, Any]]:
        assert self.returncode == 0, self.stderr
        return [doc for doc in yaml.safe_load_all(self.stdout) if doc]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = [
            doc
            for doc in self.of_kind(kind)
            if doc["metadata"]["name"] == name
            and (namespace is None or doc["metadata"].get("namespace") == namespace)
        ]
        assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
        return found[0]


def helm(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cp.assets / "helm"), *args],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_SECONDS,
        check=False,
    )


def template(
    cp: ControlPlane,
    *,
    release: str = "mcpgw",
    namespace: str = "mcpgw-system",
    values_files: tuple[Path, ...] = (),
    values: dict[str, object] | None = None,
    api_versions: tuple[str, ...] = (),
    show_only: tuple[str, ...] = (),
) -> Rendered:
    """`helm template` of the chart; `values` go through --set-json (one per key)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for path in values_files:
        args += ["--values", str(path)]
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    for api in api_versions:
        args += ["--api-versions", api]
    for name in show_only:
        args += ["--show-only", name]
    result = helm(cp, *args)
    return Rendered(result.returncode, result.stdout, result.stderr)


def env_of(deployment: dict[str, Any], container: str) -> dict[str, str]:
    """The plain `value` environment of one container (valueFrom entries are left out)."""
    (spec,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == container
    ]
    return {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}
