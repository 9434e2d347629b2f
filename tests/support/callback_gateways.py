"""MCPGateways as the callback service sees them: the CRD, the object, the consumer Secret.

Stands in for the operator: registers a client at the oidc peer with the callback replica's
redirect URI and writes the consumer Secret the operator would write, so callback tests need no
operator process.
"""

from __future__ import annotations

import base64
import json

import httpx

from tests.support.control_plane import REPO, ControlPlane
from tests.support.oidc_client import RESOURCE
from tests.support.oidc_peer import OIDCPeer

TIMEOUT = httpx.Timeout(15.0)


def apply_crd(cp: ControlPlane) -> None:
    """Install the MCPGateway CRD and wait until it serves."""
    for args in (
        ("apply", "--server-side", "-f", str(REPO / "crds" / "mcpgateways.mcpgw.dev.yaml")),
        ("wait", "--for=condition=Established", "--timeout=60s", "crd/mcpgateways.mcpgw.dev"),
    ):
        result = cp.kubectl_run(*args)
        assert result.returncode == 0, result.stderr


def create_gateway(cp: ControlPlane, namespace: str, name: str) -> str:
    """The MCPGateway object alone; returns its uid."""
    manifest = {
        "apiVersion": "mcpgw.dev/v1alpha1",
        "kind": "MCPGateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": RESOURCE, "oauth": {"scopes": ["openid", "mcp:tools"]}},
    }
    created = cp.kubectl_run("create", "-o", "json", "-f", "-", input=json.dumps(manifest))
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["metadata"]["uid"])


def write_consumer_secret(
    cp: ControlPlane, namespace: str, name: str, values: dict[str, str]
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-oauth-client", "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }
    made = cp.kubectl_run("create", "-f", "-", input=json.dumps(secret))
    assert made.returncode == 0, made.stderr


def make_registered_gateway(
    cp: ControlPlane, peer: OIDCPeer, namespace: str, name: str, redirect_uri: str
) -> str:
    """An MCPGateway plus a client registered at `peer` and its consumer Secret; returns the uid."""
    uid = create_gateway(cp, namespace, name)
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as http:
        metadata = http.get(peer.openid_configuration_url).json()
        registered = http.post(
            metadata["registration_endpoint"],
            json={
                "client_name": f"{namespace}/{name}",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "openid offline_access mcp:tools",
            },
        )
    assert registered.status_code == 201, registered.text
    client = registered.json()
    write_consumer_secret(
        cp,
        namespace,
        name,
        {
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "issuer": metadata["issuer"],
            "authorization_endpoint": metadata["authorization_endpoint"],
            "token_endpoint": metadata["token_endpoint"],
            "redirect_uri": redirect_uri,
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid mcp:tools",
        },
    )
    return uid
