"""Markdown API reference of the MCPGateway spec and status, generated from the API models."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from pydantic import BaseModel

from mcpgw_core.api import GROUP, KIND, VERSION, MCPGatewaySpec, MCPGatewayStatus

_NULL = {"type": "null"}


def _cell(text: str) -> str:
    """Table cells are one line and must not contain an unescaped pipe."""
    return " ".join(text.split()).replace("|", "\\|")


def _non_null(node: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in node:
        branches = [branch for branch in node["anyOf"] if branch != _NULL]
        if len(branches) == 1:
            return {**branches[0], **{k: v for k, v in node.items() if k != "anyOf"}}
    return node


class _Renderer:
    """Walks one model's JSON schema breadth-first, one table per object type."""

    def __init__(self, models: list[type[BaseModel]]) -> None:
        self.defs: dict[str, Any] = {}
        self.roots: list[str] = []
        self.queue: deque[str] = deque()
        self.seen: set[str] = set()
        for model in models:
            raw = model.model_json_schema(by_alias=True, mode="validation")
            self.defs.update(raw.pop("$defs", {}))
            self.defs[model.__name__] = raw
            self.roots.append(model.__name__)

    def _enqueue(self, name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.queue.append(name)

    def type_name(self, node: dict[str, Any]) -> str:
        node = _non_null(node)
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            target = self.defs[name]
            if "enum" in target:
                return self.type_name(target)
            self._enqueue(name)
            return f"[{name}](#{name.lower()})"
        if "enum" in node:
            return "enum: " + ", ".join(f"`{value}`" for value in node["enum"])
        kind = node.get("type", "object")
        if kind == "array":
            return "[]" + self.type_name(node.get("items", {}))
        if kind == "object" and isinstance(node.get("additionalProperties"), dict):
            return "map[string]" + self.type_name(node["additionalProperties"])
        if "format" in node:
            return f"{kind} ({node['format']})"
        return str(kind)

    def description(self, node: dict[str, Any]) -> str:
        node = _non_null(node)
        if "description" in node:
            return str(node["description"])
        if "$ref" in node:
            return str(self.defs[node["$ref"].rsplit("/", 1)[-1]].get("description", ""))
        return ""

    def table(self, name: str) -> list[str]:
        schema = self.defs[name]
        required = set(schema.get("required", []))
        lines = [f"### {name}", "", _cell(schema.get("description", "")), ""]
        lines += ["| Field | Type | Default | Description |", "|---|---|---|---|"]
        for field, node in schema.get("properties", {}).items():
            lines.append(
                f"| `{field}` | {self.type_name(node)} | {_default(node, field in required)} "
                f"| {_cell(self.description(node))} |"
            )
        rules = [rule["message"] for rule in schema.get("x-kubernetes-validations", [])]
        if rules:
            lines += ["", "Validation: " + "; ".join(rules) + "."]
        return [*lines, ""]

    def render(self) -> str:
        lines = [f"## {KIND} API reference (`{GROUP}/{VERSION}`)", ""]
        # Each root drains before the next, so spec types precede status types.
        for root in self.roots:
            self._enqueue(root)
            while self.queue:
                lines += self.table(self.queue.popleft())
        return "\n".join(lines)


def _default(node: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    value = node.get("default")
    if value is None:
        return ""
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def api_reference_markdown() -> str:
    """One table per object type of the spec and status (field, type, default, description)."""
    return _Renderer([MCPGatewaySpec, MCPGatewayStatus]).render()
