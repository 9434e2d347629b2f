"""The callback service for real: two uvicorn replicas, real Redis, the oidc peer, kube-apiserver.

A flow starts on replica 1 and finishes on replica 2 (the public URL points there, as a load
balancer might route it); every rejection of issue 4 is observed against the real parts.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.keyring import KeyRing, encode_key, generate_key
from tests.support.callback_gateways import apply_crd, make_registered_gateway
from tests.support.callback_replicas import (
    USER_HEADER,
    CallbackReplica,
    callback_kubeconfig,
    start_replica,
)
from tests.support.control_plane import ControlPlane
from tests.support.oidc_peer import OIDCPeer, complete_authorization, start_oidc_peer
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer, start_redis

pytestmark = pytest.mark.integration

TIMEOUT = httpx.Timeout(15.0)
USER = "alice@example.test"
JSON_ACCEPT = {"accept": "application/json"}


@dataclass
class Deployment:
    """Both replicas and what they share."""

    first: CallbackReplica
    second: CallbackReplica
    redis: RedisServer
    key_dir: Path
    peer: OIDCPeer
    control_plane: ControlPlane

    @property
    def redirect_uri(self) -> str:
        return f"{self.second.url}/oauth/callback"


@pytest.fixture(scope="module")
def deployment(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("callback")
    apply_crd(control_plane)
    # The replicas run as the chart's callback ServiceAccount: a missing permission fails here.
    kubeconfig = callback_kubeconfig(control_plane, workdir / "callback.kubeconfig")
    key_dir = workdir / "keys"
    key_dir.mkdir()
    (key_dir / "k1").write_text(encode_key(generate_key()))
    redis = start_redis(workdir=workdir / "redis")
    peer = start_oidc_peer()
    second_port = free_port()
    common = {
        "workdir": workdir,
        "redis_url": redis.url,
        "key_dir": key_dir,
        "public_url": f"http://127.0.0.1:{second_port}",
        "kubeconfig": kubeconfig,
        "replicas": 2,
    }
    started: list[CallbackReplica] = []
    try:
        started.append(start_replica(**common))  # type: ignore[arg-type]
        started.append(start_replica(port=second_port, **common))  # type: ignore[arg-type]
        yield Deployment(started[0], started[1], redis, key_dir, peer, control_plane)
    finally:
        for replica in started:
            replica.stop()
        peer.stop()
        redis.stop()


def make_gateway(deployment: Deployment, namespace: str, name: str) -> str:
    """An MCPGateway plus the consumer Secret the operator would write; returns the uid."""
    return make_registered_gateway(
        deployment.control_plane, deployment.peer, namespace, name, deployment.redirect_uri
    )


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        yield client


def start_flow(
    deployment: Deployment, browser: httpx.Client, namespace: str, name: str
) -> tuple[str, str]:
    """Start on replica 1, log in at the peer; returns (callback URL, state). Not requested."""
    response = browser.get(
        f"{deployment.first.url}/oauth/authorize/{namespace}/{name}", headers={USER_HEADER: USER}
    )
    assert response.status_code == 302, response.text
    callback = complete_authorization(response.headers["location"])
    assert callback.startswith(deployment.redirect_uri), urlsplit(callback).path
    return callback, query_of(callback)["state"]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(deployment: Deployment, path: str = "/oauth/callback", **query: str) -> str:
    return f"{deployment.second.url}{path}?{urlencode(query)}"


def reason_of(response: httpx.Response) -> str:
    return str(response.json()["reason"])


def test_flow_started_on_one_replica_finishes_on_the_other(
    deployment: Deployment, browser: httpx.Client, namespace: str
) -> None:
    uid = make_gateway(deployment, namespace, "github")
    grants_before = deployment.peer.stats()["token_grants"].get("authorization_code", 0)
    callback, _ = start_flow(deployment, browser, namespace, "github")
    done = browser.get(callback, headers=JSON_ACCEPT)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "Authorized"
    assert body["user"] == USER
    got = deployment.control_plane.kubectl_run(
        "get", "secret", "-n", namespace, body["secret"], "-o", "json"
    )
    assert got.returncode == 0, got.stderr
    secret = json.loads(got.stdout)
    meta = secret["metadata"]
    assert meta["labels"]["mcpgw.dev/gateway"] == "github"
    assert meta["labels"]["mcpgw.dev/role"] == "token"
    assert meta["annotations"]["mcpgw.dev/user"] == USER
    assert meta["ownerReferences"][0]["uid"] == uid
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["access_token"]
    assert data["refresh_token"]
    assert deployment.peer.stats()["token_grants"]["authorization_code"] == grants_before + 1
    # The status endpoint (on either replica) now sees the caller authorized, without secrets.
    status = browser.get(
        f"{deployment.first.url}/oauth/status/{namespace}/github",
        headers={USER_HEADER: USER, **JSON_ACCEPT},
    )
    assert status.json()["authorized"] is True
    assert data["access_token"] not in status.text
    # Metrics of replica 2 counted the completion.
    metrics = browser.get(f"{deployment.second.url}/metrics").text
    assert 'mcpgw_callback_flows_completed_total{result="Authorized"}' in metrics
    for value in (data["access_token"], data["refresh_token"], query_of(callback)["code"]):
        assert value not in deployment.first.process.tail(200)
        assert value not in deployment.second.process.tail(200)


def test_state_rejections_against_the_real_parts(
    deployment: Deployment, browser: httpx.Client, namespace: str
) -> None:
    make_gateway(deployment, namespace, "github")
    make_gateway(deployment, namespace, "gitlab")
    callback, state = start_flow(deployment, browser, namespace, "github")
    params = query_of(callback)
    parts = state.split(".")
    tampered = ".".join(
        [*parts[:4], ("A" if parts[4][0] != "A" else "B") + parts[4][1:], *parts[5:]]
    )
    foreign_kid = state.replace(".k1.", ".k9.", 1)
    cases = {
        "missing": ({"code": params["code"]}, StateRejection.MALFORMED),
        "oversized": ({"state": state + "A" * 1000}, StateRejection.MALFORMED),
        "non-ascii": ({"state": state[:-1] + "é"}, StateRejection.MALFORMED),
        "tampered": ({"state": tampered}, StateRejection.SIGNATURE_INVALID),
        "unknown-kid": ({"state": foreign_kid}, StateRejection.SIGNATURE_INVALID),
    }  # fmt: skip
    for label, (query, reason) in cases.items():
        response = browser.get(with_query(deployment, **query), headers=JSON_ACCEPT)
        assert response.status_code == 400, label
        assert reason_of(response) == reason, label
    # Another gateway's per-gateway callback refuses this state before Redis.
    other = browser.get(
        with_query(deployment, f"/oauth/callback/{namespace}/gitlab", **params), headers=JSON_ACCEPT
    )
    assert reason_of(other) == StateRejection.GATEWAY_MISMATCH
    # Another browser: no cookie, then a cookie of its own.
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as stranger:
        assert reason_of(stranger.get(callback, headers=JSON_ACCEPT)) == (
            StateRejection.BINDING_MISMATCH
        )
        own = stranger.get(
            f"{deployment.first.url}/oauth/authorize/{namespace}/github",
            headers={USER_HEADER: "mallory"},
        )
        assert own.status_code == 302
        assert reason_of(stranger.get(callback, headers=JSON_ACCEPT)) == (
            StateRejection.BINDING_MISMATCH
        )
    # Expired: a genuine signature by the shared key, for this browser, issued long ago.
    ring = KeyRing.from_directory(deployment.key_dir)
    binding = browser.cookies["mcpgw_flow"]
    old = ring.sign_state(gateway=f"{namespace}/github", binding=binding, now=time.time() - 900)
    expired = browser.get(with_query(deployment, state=old.state, code="x"), headers=JSON_ACCEPT)
    assert reason_of(expired) == StateRejection.EXPIRED
    # Signed but never stored: Redis says unknown.
    fresh = ring.sign_state(gateway=f"{namespace}/github", binding=binding, now=time.time())
    unknown = browser.get(with_query(deployment, state=fresh.state, code="x"), headers=JSON_ACCEPT)
    assert reason_of(unknown) == StateRejection.UNKNOWN
    # None of the above consumed the flow: it still completes, once; replica 1 sees the replay.
    assert browser.get(callback, headers=JSON_ACCEPT).status_code == 200
    replay = browser.get(callback.replace(deployment.second.url, deployment.first.url))
    assert replay.status_code == 400
    assert "Invalid or expired state parameter - possible replay attack" in replay.text
    assert "StateReplayed" in replay.text
    metrics = browser.get(f"{deployment.first.url}/metrics").text
    assert 'mcpgw_callback_state_rejections_total{reason="StateReplayed"} 1.0' in metrics


def test_authorization_server_answers(
    deployment: Deployment, browser: httpx.Client, namespace: str
) -> None:
    make_gateway(deployment, namespace, "github")
    issuer = deployment.peer.issuer
    # access_denied as the AS sends it (RFC 6749 sec. 4.1.2.1), for a genuine state.
    _, state = start_flow(deployment, browser, namespace, "github")
    denied = browser.get(
        with_query(deployment, state=state, error="access_denied", iss=issuer), headers=JSON_ACCEPT
    )
    assert denied.status_code == 403
    assert reason_of(denied) == Reason.ACCESS_DENIED
    # No code.
    _, state = start_flow(deployment, browser, namespace, "github")
    missing = browser.get(with_query(deployment, state=state, iss=issuer), headers=JSON_ACCEPT)
    assert reason_of(missing) == Reason.AUTHORIZATION_CODE_MISSING
    # A code the token endpoint refuses with 400 invalid_grant: sent once, never retried.
    callback, state = start_flow(deployment, browser, namespace, "github")
    errors_before = deployment.peer.stats()["token_errors"].get("authorization_code", {})
    bad = {**query_of(callback), "code": "not-a-real-code"}
    refused = browser.get(with_query(deployment, **bad), headers=JSON_ACCEPT)
    assert refused.status_code == 502
    assert reason_of(refused) == Reason.TOKEN_EXCHANGE_FAILED
    assert refused.json()["oauthError"] == "invalid_grant"
    errors_after = deployment.peer.stats()["token_errors"]["authorization_code"]
    assert errors_after["invalid_grant"] == errors_before.get("invalid_grant", 0) + 1


def test_key_rotation_keeps_flows_in_flight(
    deployment: Deployment, browser: httpx.Client, namespace: str
) -> None:
    make_gateway(deployment, namespace, "github")
    callback, state = start_flow(deployment, browser, namespace, "github")
    assert ".k1." in state
    (deployment.key_dir / "k2").write_text(encode_key(generate_key()))
    (deployment.key_dir / "order").write_text("k2 k1\n")
    try:
        _, newer = start_flow(deployment, browser, namespace, "github")
        assert ".k2." in newer
        assert browser.get(callback, headers=JSON_ACCEPT).status_code == 200
    finally:
        (deployment.key_dir / "order").write_text("k1 k2\n")


def test_redis_down_fails_closed_and_recovers(
    deployment: Deployment, browser: httpx.Client, namespace: str
) -> None:
    make_gateway(deployment, namespace, "github")
    callback, _ = start_flow(deployment, browser, namespace, "github")
    deployment.redis.kill()
    try:
        start = browser.get(
            f"{deployment.first.url}/oauth/authorize/{namespace}/github",
            headers={USER_HEADER: USER, **JSON_ACCEPT},
        )
        assert start.status_code == 503
        assert reason_of(start) == Reason.STATE_STORE_UNREACHABLE
        finish = browser.get(callback, headers=JSON_ACCEPT)
        assert finish.status_code == 503
        assert reason_of(finish) == Reason.STATE_STORE_UNREACHABLE
        assert browser.get(f"{deployment.second.url}/readyz").status_code == 503
    finally:
        deployment.redis.start()
    # The restarted Redis is empty: the old flow is unknown, a new one works on both replicas.
    assert reason_of(browser.get(callback, headers=JSON_ACCEPT)) == StateRejection.UNKNOWN
    again, _ = start_flow(deployment, browser, namespace, "github")
    assert browser.get(again, headers=JSON_ACCEPT).status_code == 200


def test_unauthenticated_caller_is_refused(deployment: Deployment, browser: httpx.Client) -> None:
    response = browser.get(f"{deployment.first.url}/oauth/authorize/x/y", headers=JSON_ACCEPT)
    assert response.status_code == 401
    assert reason_of(response) == Reason.UNAUTHENTICATED
