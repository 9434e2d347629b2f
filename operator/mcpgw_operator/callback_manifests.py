"""Pure builders of the callback service's objects: Deployment, Service, HMAC key-ring Secret.

No network, clock or environment: the settings and, for the key Secret, a freshly generated key
come in as arguments, so the same inputs always build the same manifests and an idle reconcile
finds nothing to patch.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from mcpgw_core.api import GROUP
from mcpgw_core.keyring import ORDER_FILE, KeyRingError, decode_key, encode_key
from mcpgw_core.state import KID_RE
from mcpgw_operator.settings import OperatorSettings

JSON = dict[str, Any]
CONTAINER: Final = "callback"
KEY_VOLUME: Final = "state-keys"
# Kubelet makes Secret files root-owned; group-readable plus fsGroup lets the non-root user in.
KEY_FILE_MODE: Final = 0o440
REDIS_CA_VOLUME: Final = "redis-ca"
REDIS_CA_DIR: Final = "/etc/mcpgw/redis-ca"
REDIS_CA_FILE: Final = f"{REDIS_CA_DIR}/ca.crt"
RUN_AS: Final = 65532  # the image's user (Dockerfile)
SERVICE_PORT: Final = 80
ROTATION_ANNOTATION: Final = f"{GROUP}/rotation"
ROTATION_HELP: Final = (
    "Add a key (not yet in 'order'); once every replica has it, put its id first in 'order'; "
    "after at least the state TTL, remove the old key from 'order' and from this Secret."
)


def selector_labels(settings: OperatorSettings) -> dict[str, str]:
    """Labels the Service selects on; never change them (a Deployment's selector is immutable)."""
    return {
        "app.kubernetes.io/name": "mcpgw-callback",
        "app.kubernetes.io/instance": settings.callback_name,
    }


def labels(settings: OperatorSettings) -> dict[str, str]:
    return {
        **selector_labels(settings),
        "app.kubernetes.io/component": "callback",
        "app.kubernetes.io/managed-by": "mcpgw-operator",
    }


def _metadata(settings: OperatorSettings, name: str) -> JSON:
    return {"name": name, "namespace": settings.callback_namespace, "labels": labels(settings)}


def _env(settings: OperatorSettings) -> list[JSON]:
    values = {
        # Inside a pod the Service and the kubelet's probes reach the container's address.
        "MCPGW_CALLBACK_HOST": "0.0.0.0",  # noqa: S104
        "MCPGW_CALLBACK_PORT": str(settings.callback_port),
        "MCPGW_CALLBACK_PUBLIC_URL": settings.callback_public_url.rstrip("/"),
        "MCPGW_CALLBACK_CALLBACK_PATH": settings.callback_path,
        "MCPGW_CALLBACK_KEY_DIR": settings.callback_key_dir,
        "MCPGW_CALLBACK_STATE_TTL_SECONDS": str(settings.callback_state_ttl_seconds),
        "MCPGW_CALLBACK_AUTH_MODE": settings.callback_auth_mode,
        "MCPGW_CALLBACK_USER_HEADER": settings.callback_user_header,
        "MCPGW_CALLBACK_TRUSTED_PROXIES": settings.callback_trusted_proxies,
        # The service refuses unsafe modes (dev-insecure) when it knows it has company.
        "MCPGW_CALLBACK_REPLICAS": str(settings.callback_replicas),
    }
    # The API server drops empty values (omitempty); keeping them would look like drift forever.
    env: list[JSON] = [{"name": k, "value": v} for k, v in values.items() if v]
    if settings.callback_redis_url_secret:
        ref = {
            "name": settings.callback_redis_url_secret,
            "key": settings.callback_redis_url_secret_key,
        }
        env.append({"name": "MCPGW_CALLBACK_REDIS_URL", "valueFrom": {"secretKeyRef": ref}})
    elif settings.callback_redis_url:
        env.append({"name": "MCPGW_CALLBACK_REDIS_URL", "value": settings.callback_redis_url})
    if settings.callback_redis_ca_secret:
        env.append({"name": "MCPGW_CALLBACK_REDIS_CA_FILE", "value": REDIS_CA_FILE})
    return env


def _probe(path: str, period: int) -> JSON:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def _container(settings: OperatorSettings) -> JSON:
    return {
        "name": CONTAINER,
        "image": settings.callback_image,
        "imagePullPolicy": settings.callback_image_pull_policy,
        "command": ["mcpgw-callback"],
        "ports": [{"name": "http", "containerPort": settings.callback_port, "protocol": "TCP"}],
        "env": _env(settings),
        "volumeMounts": [
            # The whole Secret as a directory (never subPath), so key rotations reach the pod.
            {"name": KEY_VOLUME, "mountPath": settings.callback_key_dir, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not the host's
            *(
                [{"name": REDIS_CA_VOLUME, "mountPath": REDIS_CA_DIR, "readOnly": True}]
                if settings.callback_redis_ca_secret
                else []
            ),
        ],
        "readinessProbe": _probe("/readyz", 5),
        "livenessProbe": _probe("/healthz", 10),
        "resources": settings.callback_resources,
        # The restricted Pod Security Standard, field by field.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def desired_deployment(settings: OperatorSettings) -> JSON:
    """The callback Deployment: every replica mounts the same key ring and shares one Redis."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(settings, settings.callback_name),
        "spec": {
            "replicas": settings.callback_replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(settings)},
            "template": {
                "metadata": {"labels": labels(settings)},
                "spec": {
                    "serviceAccountName": settings.callback_service_account,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(settings)],
                    "volumes": [
                        {
                            "name": KEY_VOLUME,
                            "secret": {
                                "secretName": settings.key_secret_name,
                                "defaultMode": KEY_FILE_MODE,
                            },
                        },
                        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                        *_redis_ca_volume(settings),
                    ],
                },
            },
        },
    }


def _redis_ca_volume(settings: OperatorSettings) -> list[JSON]:
    """The CA of a TLS Redis, when configured, as one file the service points redis-py at."""
    if not settings.callback_redis_ca_secret:
        return []
    return [
        {
            "name": REDIS_CA_VOLUME,
            "secret": {
                "secretName": settings.callback_redis_ca_secret,
                "items": [{"key": settings.callback_redis_ca_secret_key, "path": "ca.crt"}],
                "defaultMode": KEY_FILE_MODE,
            },
        }
    ]


def desired_service(settings: OperatorSettings) -> JSON:
    """The ClusterIP Service in front of the replicas (the ingress or auth proxy targets it)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(settings, settings.callback_name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(settings),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def desired_key_secret(
    settings: OperatorSettings, existing: JSON | None, new_key: tuple[str, bytes]
) -> JSON | None:
    """The key-ring Secret to create, or None when one exists: an existing ring is never
    touched, since rewriting it would invalidate every state in flight."""
    if existing is not None:
        return None
    kid, key = new_key
    metadata = _metadata(settings, settings.key_secret_name)
    metadata["annotations"] = {ROTATION_ANNOTATION: ROTATION_HELP}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        # With an `order` file from the start, a rotation only ever appends keys (see keyring).
        "data": {kid: _b64(encode_key(key)), ORDER_FILE: _b64(kid)},
    }


def key_ring_problem(secret: JSON | None) -> str | None:
    """Why the mounted key ring would hold no usable key, or None when it is usable.

    Mirrors what `mcpgw_core.keyring` accepts from the mounted directory; messages name keys by
    id only, never by content.
    """
    if secret is None:
        return "the Secret does not exist"
    files: dict[str, bytes] = {}
    order: list[str] | None = None
    for name, encoded in sorted((secret.get("data") or {}).items()):
        if name.startswith("."):
            continue  # hidden in the mounted directory, like the volume's own entries
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return f"entry {name} is not valid base64"
        if name == ORDER_FILE:
            order = raw.decode("ascii", errors="replace").split()
            continue
        if KID_RE.fullmatch(name) is None:
            return f"entry {name[:40]!r} is not a valid key id ([A-Za-z0-9_-]{{1,32}})"
        try:
            files[name] = decode_key(raw)
        except KeyRingError as exc:
            return f"key {name}: {exc.message}"
    if not files:
        return "the Secret holds no key"
    if order is not None and (
        not order or len(set(order)) != len(order) or any(k not in files for k in order)
    ):
        return "its order entry is empty, repeats an id or names a key that is absent"
    return None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")
