"""Users' tokens on the operator side, against the real control plane and a rotating oidc peer.

The tokens come from a real authorization-code flow with the client the operator registered
(driven headlessly here instead of through the callback service), stored in the token Secret
exactly as the callback service would store it. Then: `Authorized` and token expiry in status;
a forced refresh raced by two operator processes and the due time against a server that rotates
refresh tokens (one refresh, nothing revoked); a revoked grant turning into `RefreshFailed`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from mcpgw_core.api import TokenEndpointAuthMethod
from mcpgw_core.pkce import make_pkce_pair
from mcpgw_core.token_secrets import (
    REFRESH_ERROR_ANNOTATION,
    REFRESH_LEASE_ANNOTATION,
    REFRESH_REQUESTED_ANNOTATION,
    token_data,
    token_secret,
    token_secret_name,
)
from mcpgw_core.tokens import ClientCredentials, TokenSet, exchange_code
from tests.support import gateways as gw
from tests.support.control_plane import ControlPlane
from tests.support.oidc_login import complete_authorization
from tests.support.oidc_peer import OIDCPeer, start_oidc_peer
from tests.support.processes import ManagedProcess

pytestmark = pytest.mark.integration
MCP_URL = "http://127.0.0.1:9/mcp"  # never contacted: spec.oauth.issuer skips RFC 9728
USER = "alice@example.com"
# The peer's access tokens live ACCESS_TTL s; the operator refreshes REFRESH_BEFORE s ahead, so
# a freshly refreshed set is next due ACCESS_TTL - REFRESH_BEFORE s later: a quiet window in
# which a second refresh would be a bug.
ACCESS_TTL = 120
REFRESH_BEFORE = 80
QUIET_WINDOW = ACCESS_TTL - REFRESH_BEFORE
WAIT = 40.0


@pytest.fixture(scope="module")
def rotating_peer() -> Iterator[OIDCPeer]:
    """An AS that rotates refresh tokens (reuse revokes the grant) with short-lived tokens."""
    with start_oidc_peer(
        issuer_path="/rotating", rotate_refresh_tokens=True, access_token_ttl=ACCESS_TTL
    ) as peer:
        yield peer


def _operator_env() -> dict[str, str]:
    return {"MCPGW_REFRESH_BEFORE_SECONDS": str(REFRESH_BEFORE), "MCPGW_TIMER_SECONDS": "1"}


def _registered_gateway(cp: ControlPlane, namespace: str, peer: OIDCPeer) -> dict[str, Any]:
    gw.apply(
        cp,
        gw.make_gateway(
            "tools",
            namespace,
            MCP_URL,
            oauth={"issuer": peer.issuer, "scopes": ["mcp:tools"]},
        ),
    )
    return gw.wait_for_condition(cp, "tools", namespace, "Registered", "True", timeout=WAIT)


def _authorize(client: dict[str, str], resource: str) -> TokenSet:
    """A real code flow with the operator's client, as the callback service runs it."""
    verifier, challenge = make_pkce_pair()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": client["redirect_uri"],
        "scope": client["scope"],
        "resource": resource,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "prompt": "consent",
    }
    redirect = complete_authorization(
        f"{client['authorization_endpoint']}?{urlencode(params)}", username=USER
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(redirect).query).items()}
    assert query.get("state") == state, "the peer redirected without our state"
    assert "code" in query, f"no code in the redirect: {query.get('error')}"

    async def exchange() -> TokenSet:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
            return await exchange_code(
                http,
                token_endpoint=client["token_endpoint"],
                code=query["code"],
                code_verifier=verifier,
                redirect_uri=client["redirect_uri"],
                credentials=ClientCredentials(
                    client["client_id"],
                    client["client_secret"],
                    TokenEndpointAuthMethod(client["token_endpoint_auth_method"]),
                ),
                now=datetime.now(UTC),
                resource=resource,
            )

    tokens = asyncio.run(exchange())
    assert tokens.refresh_token, "the peer issued no refresh token"
    return tokens


def _store(cp: ControlPlane, gateway: dict[str, Any], tokens: TokenSet, **annotations: str) -> str:
    meta = gateway["metadata"]
    manifest = token_secret(
        namespace=meta["namespace"],
        gateway=meta["name"],
        gateway_uid=meta["uid"],
        user=USER,
        tokens=tokens,
    )
    manifest["metadata"]["annotations"].update(annotations)
    created = cp.kubectl_run("create", "-f", "-", input=json.dumps(manifest))
    assert created.returncode == 0, created.stderr
    return str(manifest["metadata"]["name"])


def _secret(cp: ControlPlane, name: str, namespace: str) -> dict[str, Any]:
    secret = gw.get(cp, "secret", name, namespace)
    assert secret is not None, f"token Secret {name} is gone"
    return secret


def _values(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _annotations(secret: dict[str, Any]) -> dict[str, str]:
    return dict(secret["metadata"].get("annotations") or {})


def _refreshes(peer: OIDCPeer) -> tuple[int, dict[str, int], int, int]:
    stats = peer.stats()
    return (
        stats["token_grants"].get("refresh_token", 0),
        dict(stats["token_errors"].get("refresh_token", {})),
        stats["refresh_token_reuse"],
        stats["grants_revoked"],
    )


def _assert_logs_hold_none_of(operators: list[ManagedProcess], *values: str | None) -> None:
    for proc in operators:
        log = proc.log_path.read_text(errors="replace")
        for value in filter(None, values):
            assert value not in log, f"a token value appears in {proc.log_path}"


def _set_up(
    cp: ControlPlane, namespace: str, peer: OIDCPeer
) -> tuple[dict[str, Any], dict[str, str], TokenSet]:
    gateway = _registered_gateway(cp, namespace, peer)
    client = gw.secret_data(cp, "tools-oauth-client", namespace)
    assert client is not None
    return gateway, client, _authorize(client, MCP_URL)


def test_tokens_authorize_the_gateway_and_racing_refresh_triggers_refresh_once(
    control_plane: ControlPlane,
    namespace: str,
    rotating_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    cp, peer = control_plane, rotating_peer
    operators = [run_operator(**_operator_env())]
    gateway, client, tokens = _set_up(cp, namespace, peer)
    before = _refreshes(peer)
    awaiting = gw.wait_for_condition(
        cp, "tools", namespace, "Authorized", "False", reason="AwaitingAuthorization", timeout=WAIT
    )
    assert (
        "status.authorization.authorizeURL"
        in (gw.condition(awaiting, "Authorized") or {})["message"]
    )

    # 1. Tokens stored as the callback stores them: Authorized, with expiry and user count.
    name = _store(cp, gateway, tokens)
    assert name == token_secret_name("tools", USER)
    body = gw.wait_for_condition(cp, "tools", namespace, "Authorized", "True", timeout=WAIT)
    authorization = body["status"]["authorization"]
    assert authorization["usersAuthorized"] == 1
    assert authorization["tokenExpiresAt"] == _values(_secret(cp, name, namespace))["expires_at"]
    assert (gw.condition(body, "Authorized") or {})["message"] == "Tokens are stored for 1 user"
    assert _refreshes(peer) == before  # not due yet: nothing refreshed on its own

    # 2. A second operator process joins; then a forced refresh is requested while the stored
    #    expiry also says "due now": two processes, each with two triggers, race for one grant.
    operators.append(run_operator(**_operator_env()))
    old = _values(_secret(cp, name, namespace))
    due_now = tokens.model_copy(update={"expires_at": datetime.now(UTC) + timedelta(seconds=5)})
    patch = {
        "metadata": {"annotations": {REFRESH_REQUESTED_ANNOTATION: "race"}},
        "data": {"expires_at": token_data(due_now)["expires_at"]},
    }
    patched = cp.kubectl_run(
        "patch", "secret", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )
    assert patched.returncode == 0, patched.stderr

    def refreshed() -> bool:
        secret = _secret(cp, name, namespace)
        return _values(secret)["access_token"] != old[
            "access_token"
        ] and REFRESH_REQUESTED_ANNOTATION not in _annotations(secret)

    gw.wait_until(refreshed, WAIT, "the forced refresh")
    started = time.monotonic()
    # Let both processes' loops tick a few times; any second refresh would happen now.
    time.sleep(5)
    assert time.monotonic() - started < QUIET_WINDOW
    count, errors, reuse, revoked = _refreshes(peer)
    assert count == before[0] + 1, f"{count - before[0]} refreshes at the peer"
    assert (errors, reuse, revoked) == ({}, 0, 0)

    secret = _secret(cp, name, namespace)
    new = _values(secret)
    assert new["refresh_token"] != old["refresh_token"], "the peer rotates refresh tokens"
    assert new["access_token"] != old["access_token"]
    assert new["obtained_at"] > old["obtained_at"]
    annotations = _annotations(secret)
    assert REFRESH_LEASE_ANNOTATION not in annotations
    assert REFRESH_ERROR_ANNOTATION not in annotations

    gw.wait_for_condition(cp, "tools", namespace, "Authorized", "True", timeout=WAIT)
    gw.wait_until(
        lambda: (
            (gw.get(cp, "mcpgateway", "tools", namespace) or {})["status"]["authorization"].get(
                "tokenExpiresAt"
            )
            == new["expires_at"]
        ),
        WAIT,
        "tokenExpiresAt to follow the refresh",
    )
    # Last, as it rotates the grant once more: the stored refresh token is the live one.
    with httpx.Client(timeout=10.0, trust_env=False) as http:
        probe = http.post(
            client["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
            auth=(client["client_id"], client["client_secret"]),
        )
    assert probe.status_code == 200, probe.text
    _assert_logs_hold_none_of(
        operators,
        client["client_secret"],
        old["access_token"],
        old["refresh_token"],
        new["access_token"],
        new["refresh_token"],
    )


def test_a_revoked_grant_turns_into_refresh_failed_and_the_secret_is_kept(
    control_plane: ControlPlane,
    namespace: str,
    rotating_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    cp, peer = control_plane, rotating_peer
    operator = run_operator(**_operator_env())
    gateway, _, tokens = _set_up(cp, namespace, peer)
    name = _store(cp, gateway, tokens)
    gw.wait_for_condition(cp, "tools", namespace, "Authorized", "True", timeout=WAIT)
    before = _refreshes(peer)

    dead = "revoked-" + secrets.token_urlsafe(24)
    patch = {
        "metadata": {"annotations": {REFRESH_REQUESTED_ANNOTATION: "now"}},
        "data": {"refresh_token": base64.b64encode(dead.encode()).decode()},
    }
    patched = cp.kubectl_run(
        "patch", "secret", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )
    assert patched.returncode == 0, patched.stderr

    body = gw.wait_for_condition(
        cp, "tools", namespace, "Authorized", "False", reason="RefreshFailed", timeout=WAIT
    )
    message = (gw.condition(body, "Authorized") or {})["message"]
    assert "invalid_grant" in message
    assert dead not in json.dumps(body)
    assert body["status"]["authorization"]["usersAuthorized"] == 0

    secret = _secret(cp, name, namespace)  # kept: the user's grant is reported, not deleted
    assert _values(secret)["access_token"] == tokens.access_token
    assert _values(secret)["refresh_token"] == dead
    annotations = _annotations(secret)
    assert annotations[REFRESH_ERROR_ANNOTATION] == "invalid_grant"
    assert REFRESH_REQUESTED_ANNOTATION not in annotations
    assert REFRESH_LEASE_ANNOTATION not in annotations
    count, errors, _, _ = _refreshes(peer)
    assert count == before[0]
    assert errors.get("invalid_grant", 0) == before[1].get("invalid_grant", 0) + 1

    events = cp.kubectl_run(
        "get", "events", "-n", namespace, "--field-selector", "reason=RefreshFailed", "-o", "json"
    )
    assert events.returncode == 0, events.stderr
    items = json.loads(events.stdout)["items"]
    assert any(
        e["type"] == "Warning" and e["involvedObject"]["name"] == "tools" and USER in e["message"]
        for e in items
    ), [e["message"] for e in items]
    assert not any(dead in e["message"] for e in items)
    _assert_logs_hold_none_of([operator], dead, tokens.access_token, tokens.refresh_token)

    # A new authorization (the callback replaces the whole Secret) clears the failure.
    fresh = _authorize(gw.secret_data(cp, "tools-oauth-client", namespace) or {}, MCP_URL)
    replacement = token_secret(
        namespace=namespace, gateway="tools", gateway_uid=gateway["metadata"]["uid"], user=USER,
        tokens=fresh,
    )  # fmt: skip
    replaced = cp.kubectl_run("replace", "-f", "-", input=json.dumps(replacement))
    assert replaced.returncode == 0, replaced.stderr
    gw.wait_for_condition(cp, "tools", namespace, "Authorized", "True", timeout=WAIT)
