"""A minimal OAuth client for tests against the oidc peer: DCR, PKCE, authorize URL, tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.support.oidc_login import complete_authorization
from tests.support.oidc_peer import OIDCPeer

RESOURCE = "http://127.0.0.1:9/mcp"
# Never requested: the peer only has to accept it as a registered redirect URI.
REDIRECT_URI = "http://127.0.0.1:8765/oauth/callback"


@dataclass
class Registered:
    """What a successful RFC 7591 registration answered."""

    client_id: str
    client_secret: str | None
    registration_access_token: str
    registration_client_uri: str
    body: dict[str, Any]


@dataclass
class Pkce:
    """An RFC 7636 verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def make(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def metadata(http: httpx.Client, peer: OIDCPeer) -> dict[str, Any]:
    response = http.get(peer.openid_configuration_url)
    assert response.status_code == 200
    return dict(response.json())


def register(
    http: httpx.Client, peer: OIDCPeer, *, token: str | None = None, **overrides: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "client_name": "mcpgw test client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid offline_access mcp:tools",
        **overrides,
    }
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return http.post(metadata(http, peer)["registration_endpoint"], json=body, headers=headers)


def register_ok(http: httpx.Client, peer: OIDCPeer, **overrides: Any) -> Registered:
    response = register(http, peer, **overrides)
    assert response.status_code == 201, response.text
    body = response.json()
    return Registered(
        client_id=body["client_id"],
        client_secret=body.get("client_secret"),
        registration_access_token=body["registration_access_token"],
        registration_client_uri=body["registration_client_uri"],
        body=body,
    )


def authorize_url(
    http: httpx.Client,
    peer: OIDCPeer,
    client: Registered,
    pkce: Pkce | None,
    state: str,
    **extra: str,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        # No offline_access: the peer must issue refresh tokens without it.
        "scope": "openid mcp:tools",
        "resource": RESOURCE,
        "state": state,
        "prompt": "consent",
        **extra,
    }
    if pkce is not None:
        params |= {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    return f"{metadata(http, peer)['authorization_endpoint']}?{urlencode(params)}"


def callback_params(url: str) -> dict[str, str]:
    assert url.startswith(f"{REDIRECT_URI}?"), urlsplit(url).path
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def token_request(
    http: httpx.Client, peer: OIDCPeer, client: Registered, form: dict[str, str]
) -> httpx.Response:
    assert client.client_secret is not None
    return http.post(
        metadata(http, peer)["token_endpoint"],
        data=form,
        auth=(client.client_id, client.client_secret),
    )


def obtain_code(http: httpx.Client, peer: OIDCPeer, client: Registered, pkce: Pkce) -> str:
    state = secrets.token_urlsafe(16)
    params = callback_params(complete_authorization(authorize_url(http, peer, client, pkce, state)))
    assert params["state"] == state
    assert params["iss"] == peer.issuer
    return params["code"]


def exchange(
    http: httpx.Client, peer: OIDCPeer, client: Registered, code: str, verifier: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "resource": RESOURCE,
    }
    return token_request(http, peer, client, form)


def refresh(
    http: httpx.Client, peer: OIDCPeer, client: Registered, refresh_token: str
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(http, peer, client, form)


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
