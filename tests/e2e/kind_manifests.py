"""Pure builders for the kind backend: the chart values and the oidc-provider peer's objects."""

from __future__ import annotations

from typing import Any, Final

JSON = dict[str, Any]
PEER_NAMESPACE: Final = "mcpgw-oidc-peer"
#: The peer listens on the node's network; a port outside the NodePort range and kind's own.
PEER_PORT: Final = 9480
PEER_ISSUER_PATH: Final = "/e2e"


def chart_values(image: str, public_url: str) -> JSON:
    """Values for `helm install`: the loaded image, two callback replicas, bundled Redis.

    `kubectl port-forward` connects to the pod from its loopback address, so that is the one
    trusted proxy: the test process plays the auth proxy in front of the callback service.
    """
    repository, _, tag = image.rpartition(":")
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "callback": {
            "replicas": 2,
            "publicURL": public_url,
            "trustedProxies": ["127.0.0.1/32", "::1/128"],
        },
        "redis": {"mode": "bundled"},
    }


def peer_manifests(image: str) -> JSON:
    """The peer as a Deployment on the node's network, rotating refresh tokens.

    It binds the node's address (the downward API's status.hostIP, expanded by the kubelet in
    OIDC_PEER_HOST), and the peer builds its issuer from the address it binds, so the issuer
    URL reaches the same server from pods and from the machine running kind.
    """
    labels = {"app": "oidc-peer"}
    env = [
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "OIDC_PEER_HOST", "value": "$(HOST_IP)"},
        {"name": "PORT", "value": str(PEER_PORT)},
        {"name": "OIDC_PEER_ISSUER_PATH", "value": PEER_ISSUER_PATH},
        {"name": "OIDC_PEER_ROTATE_REFRESH_TOKENS", "value": "true"},
    ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "oidc-peer", "namespace": PEER_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            # One peer at a time: two would compete for the node's port.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "containers": [
                        {
                            "name": "oidc-peer",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "env": env,
                            "ports": [{"containerPort": PEER_PORT, "name": "http"}],
                            "readinessProbe": {
                                "tcpSocket": {"port": PEER_PORT},
                                "periodSeconds": 2,
                            },
                        }
                    ],
                },
            },
        },
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PEER_NAMESPACE}}
    return {"apiVersion": "v1", "kind": "List", "items": [namespace, deployment]}
