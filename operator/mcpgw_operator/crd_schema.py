"""Conversion of pydantic JSON schemas into Kubernetes structural OpenAPI v3 schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Keys a structural schema may carry that we pass through. Anything else pydantic emits (title,
# $defs, examples) is dropped, because the API server rejects or ignores it.
_KEPT_KEYS = (
    "type",
    "format",
    "description",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "items",
    "properties",
    "additionalProperties",
    "required",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
)
_NULL = {"type": "null"}


class SchemaConversionError(ValueError):
    """The model uses a construct that has no structural schema form (e.g. a real union)."""


def structural_schema(model: type[BaseModel], *, keep_defaults: bool = True) -> dict[str, Any]:
    """The structural schema of `model`'s wire form (camelCase aliases).

    `keep_defaults=False` drops every default: the API server applies schema defaults when it
    reads an object, so defaults in a status schema would make the stored status differ from what
    the operator wrote and turn every resync into a write.
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = raw.pop("$defs", {})
    return _convert(raw, defs, path=model.__name__, keep_defaults=keep_defaults)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline `$ref`, single-item `allOf` and `anyOf [X, null]`; the outer keys win, so a field's
    description replaces the referenced model's docstring."""
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        return _resolve({**defs[name], **node}, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        (only,) = node.pop("allOf")
        return _resolve({**_resolve(only, defs), **node}, defs)
    if "anyOf" in node:
        branches = [branch for branch in node.pop("anyOf") if branch != _NULL]
        if len(branches) != 1:
            raise SchemaConversionError("only `X | None` unions have a structural form")
        return _resolve({**_resolve(branches[0], defs), **node}, defs)
    return node


def _convert(
    node: dict[str, Any], defs: dict[str, Any], *, path: str, keep_defaults: bool
) -> dict[str, Any]:
    node = _resolve(node, defs)
    if "type" not in node:
        raise SchemaConversionError(f"{path}: no type (structural schemas need one on every node)")
    out: dict[str, Any] = {}
    for key in _KEPT_KEYS:
        if key not in node:
            continue
        value = node[key]
        # `default: null` is pydantic's way of saying optional; it is not a value to apply.
        if key == "default" and (value is None or not keep_defaults):
            continue
        if key == "description":
            value = " ".join(value.split())
        elif key == "items":
            value = _convert(value, defs, path=f"{path}[]", keep_defaults=keep_defaults)
        elif key == "additionalProperties":
            if value is False:
                continue
            value = _convert(value, defs, path=f"{path}{{}}", keep_defaults=keep_defaults)
        elif key == "properties":
            value = {
                name: _convert(sub, defs, path=f"{path}.{name}", keep_defaults=keep_defaults)
                for name, sub in value.items()
            }
        out[key] = value
    # Kubernetes stores integers as int64; saying so keeps clients from guessing int32.
    if out["type"] == "integer":
        out.setdefault("format", "int64")
        out = {key: out[key] for key in _KEPT_KEYS if key in out}
    return out


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, parents first (used by tests and the drift check)."""
    nodes = [(path or ".", schema)]
    for name, sub in schema.get("properties", {}).items():
        nodes.extend(walk(sub, f"{path}.{name}"))
    if isinstance(schema.get("items"), dict):
        nodes.extend(walk(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        nodes.extend(walk(schema["additionalProperties"], f"{path}{{}}"))
    return nodes
