"""Pure builders of the Secrets an MCPGateway owns; no network, no clock."""

from __future__ import annotations

import base64
import json
from typing import Any

from mcpgw_core.api import GROUP, KIND, VERSION, MCPGatewaySpec

JSON = dict[str, Any]
MANAGED_BY = {"app.kubernetes.io/managed-by": "mcpgw-operator"}
GATEWAY_LABEL = f"{GROUP}/gateway"
ROLE_LABEL = f"{GROUP}/role"

#: Keys of the consumer Secret, a documented contract for whatever consumes the client.
CONSUMER_KEYS = (
    "client_id",
    "client_secret",
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "redirect_uri",
    "token_endpoint_auth_method",
    "scope",
)
REGISTRATION_KEY = "registration.json"


def consumer_secret_name(gateway: str) -> str:
    return f"{gateway}-oauth-client"


def registration_secret_name(gateway: str) -> str:
    return f"{gateway}-oauth-registration"


def owner_reference(body: JSON) -> JSON:
    meta = body["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def decode_data(secret: JSON | None) -> dict[str, str]:
    if not secret:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _metadata(body: JSON, name: str, role: str, spec: MCPGatewaySpec | None) -> JSON:
    labels = dict(spec.secret_template.labels) if spec else {}
    labels.update(MANAGED_BY)
    labels[GATEWAY_LABEL] = body["metadata"]["name"]
    labels[ROLE_LABEL] = role
    meta: JSON = {
        "name": name,
        "namespace": body["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(body)],
    }
    annotations = dict(spec.secret_template.annotations) if spec else {}
    if annotations:
        meta["annotations"] = annotations
    return meta


def consumer_secret(body: JSON, spec: MCPGatewaySpec, values: dict[str, str | None]) -> JSON:
    """The Secret workloads read: client credentials and endpoints under fixed key names."""
    data = {k: _b64(v) for k, v in values.items() if k in CONSUMER_KEYS and v}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(body, consumer_secret_name(body["metadata"]["name"]), "client", spec),
        "data": data,
    }


def registration_secret(body: JSON, record: JSON) -> JSON:
    """The operator-only Secret with the registration intent and RFC 7592 management data."""
    name = registration_secret_name(body["metadata"]["name"])
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(body, name, "registration", None),
        "data": {REGISTRATION_KEY: _b64(json.dumps(record, sort_keys=True))},
    }


def read_registration_record(secret: JSON | None) -> JSON:
    raw = decode_data(secret).get(REGISTRATION_KEY)
    return dict(json.loads(raw)) if raw else {}


def secret_differs(actual: JSON, desired: JSON) -> bool:
    """Whether data, labels, annotations or ownership drifted from what we want."""
    a_meta, d_meta = actual.get("metadata", {}), desired["metadata"]
    labels = a_meta.get("labels") or {}
    annotations = a_meta.get("annotations") or {}
    return (
        (actual.get("data") or {}) != desired["data"]
        or any(labels.get(k) != v for k, v in d_meta["labels"].items())
        or any(annotations.get(k) != v for k, v in d_meta.get("annotations", {}).items())
    )
