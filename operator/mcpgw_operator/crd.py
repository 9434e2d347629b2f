"""The MCPGateway CustomResourceDefinition, generated from the API models, and its CLI.

python -m mcpgw_operator.crd              # print the CRD YAML
python -m mcpgw_operator.crd --write      # write crds/ and the Helm chart's copy
python -m mcpgw_operator.crd --check      # exit 1 when either committed file has drifted
python -m mcpgw_operator.crd --markdown   # print the API reference tables
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from mcpgw_core.api import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    ConditionType,
    MCPGatewaySpec,
    MCPGatewayStatus,
)
from mcpgw_operator.api_reference import api_reference_markdown
from mcpgw_operator.crd_schema import structural_schema

CRD_NAME = f"{PLURAL}.{GROUP}"
DEFAULT_PATH = Path("crds") / f"{CRD_NAME}.yaml"
# The chart renders its CRD template from this copy (.Files.Get cannot reach outside the chart).
CHART_PATH = Path("charts") / "mcpgw-operator" / "files" / "crds" / f"{CRD_NAME}.yaml"
REGENERATE_COMMAND = "python -m mcpgw_operator.crd --write"
HEADER = f"# Generated from mcpgw_core/api.py by `{REGENERATE_COMMAND}`. Do not edit.\n"


def _condition_column(name: str, condition: str, field: str, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].{field}',
    }
    if priority:
        column["priority"] = priority
    return column


def printer_columns() -> list[dict[str, Any]]:
    """Columns of `kubectl get mcpgateways`; priority 1 shows only with `-o wide`."""
    return [
        _condition_column("Ready", ConditionType.READY, "status"),
        {"name": "Issuer", "type": "string", "jsonPath": ".status.discovery.issuer"},
        {"name": "Client", "type": "string", "jsonPath": ".status.client.clientID"},
        _condition_column("Authorized", ConditionType.AUTHORIZED, "status"),
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        _condition_column("Reason", ConditionType.READY, "reason", priority=1),
        _condition_column("Message", ConditionType.READY, "message", priority=1),
    ]


def openapi_schema() -> dict[str, Any]:
    """The root structural schema of an MCPGateway object."""
    return {
        "type": "object",
        "description": "MCPGateway declares one upstream MCP server that needs OAuth 2.0; the "
        "operator discovers its authorization server, registers a client and reports progress "
        "in status.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural_schema(MCPGatewaySpec),
            # No defaults in status: see structural_schema().
            "status": structural_schema(MCPGatewayStatus, keep_defaults=False),
        },
        "required": ["spec"],
    }


def crd_manifest() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["mcp"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render_crd() -> str:
    """The CRD as the YAML text committed under crds/."""
    body = yaml.safe_dump(crd_manifest(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def _write(paths: list[Path]) -> int:
    text = render_crd()
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _check(paths: list[Path]) -> int:
    text = render_crd()
    drifted = [p for p in paths if (p.read_text(encoding="utf-8") if p.exists() else "") != text]
    for path in drifted:
        print(
            f"{path} is out of date with mcpgw_core/api.py; run `{REGENERATE_COMMAND}`",
            file=sys.stderr,
        )
    return 1 if drifted else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcpgw_operator.crd", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write the CRD file")
    action.add_argument("--check", action="store_true", help="fail when the CRD file drifted")
    action.add_argument("--markdown", action="store_true", help="print the API reference")
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="CRD file location")
    parser.add_argument(
        "--chart-path", type=Path, default=CHART_PATH, help="the Helm chart's copy of the CRD"
    )
    args = parser.parse_args(argv)
    if args.write:
        return _write([args.path, args.chart_path])
    if args.check:
        return _check([args.path, args.chart_path])
    sys.stdout.write(api_reference_markdown() if args.markdown else render_crd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
