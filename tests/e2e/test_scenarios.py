"""The end-to-end scenarios, one set for every backend: register, authorize through the callback
service, and a raced forced refresh against an authorization server that rotates refresh tokens.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx
import pytest

from mcpgw_core.token_secrets import (
    GATEWAY_LABEL,
    REFRESH_ERROR_ANNOTATION,
    REFRESH_LEASE_ANNOTATION,
    REFRESH_REQUESTED_ANNOTATION,
    ROLE_LABEL,
    TOKEN_ROLE,
    USER_ANNOTATION,
    token_secret_name,
)
from mcpgw_operator.refresh_plan import lease_value
from tests.e2e.backends import JSON, Cluster
from tests.e2e.steps import (
    HTTP_TIMEOUT,
    apply_registered,
    authorize_through_callback,
    condition,
    token_grants,
    wait_for_condition,
    wait_until,
)

pytestmark = pytest.mark.e2e
USER: Final = "alice@example.test"
#: Ticks of the operator's refresh loop to wait for a second refresh that must not happen.
QUIET_TICKS: Final = 3
#: How long the stand-in "other operator process" holds the refresh lease in phase 2.
HELD_LEASE_SECONDS: Final = 8.0


def test_a_gateway_registers_and_publishes_its_client(cluster: Cluster, e2e_namespace: str) -> None:
    body = apply_registered(cluster, "files", e2e_namespace)
    status = body["status"]
    assert (condition(body, "Discovered") or {}).get("status") == "True"
    assert status["discovery"]["issuer"] == cluster.issuer
    client = cluster.secret_values("files-oauth-client", e2e_namespace)
    assert client is not None, "no consumer Secret"
    redirect_uri = f"{cluster.public_url}/oauth/callback"
    assert client["issuer"] == cluster.issuer
    assert client["redirect_uri"] == redirect_uri
    assert client["client_secret"]
    assert status["client"]["clientID"] == client["client_id"]
    # The authorization server holds exactly that client, with the callback's redirect URI.
    stored = cluster.peer_client(client["client_id"])
    assert stored is not None, "the peer does not know the registered client"
    assert stored["redirect_uris"] == [redirect_uri]
    # The callback service is healthy from the operator's view; nobody has authorized yet.
    body = wait_for_condition(cluster, "files", e2e_namespace, "CallbackReady", "True")
    body = wait_for_condition(cluster, "files", e2e_namespace, "StateStoreReady", "True")
    assert (condition(body, "Authorized") or {}).get("reason") == "AwaitingAuthorization"
    assert (condition(body, "Ready") or {}).get("status") == "False"
    assert client["client_secret"] not in cluster.component_logs()


def test_authorizing_through_the_callback_stores_tokens_and_readies_the_gateway(
    cluster: Cluster, e2e_namespace: str
) -> None:
    gateway = apply_registered(cluster, "tools", e2e_namespace)
    codes_before = token_grants(cluster, "authorization_code")

    done = authorize_through_callback(cluster, "tools", e2e_namespace, USER)

    assert done.secret_name == token_secret_name("tools", USER)
    secret = cluster.get("secret", done.secret_name, e2e_namespace)
    assert secret is not None
    meta = secret["metadata"]
    assert meta["labels"][GATEWAY_LABEL] == "tools"
    assert meta["labels"][ROLE_LABEL] == TOKEN_ROLE
    assert meta["annotations"][USER_ANNOTATION] == USER
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("MCPGateway", "tools")
    assert owner["uid"] == gateway["metadata"]["uid"]
    tokens = cluster.secret_values(done.secret_name, e2e_namespace) or {}
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    assert token_grants(cluster, "authorization_code") == codes_before + 1

    body = wait_for_condition(cluster, "tools", e2e_namespace, "Authorized", "True")
    assert body["status"]["authorization"]["usersAuthorized"] == 1
    assert body["status"]["authorization"]["tokenExpiresAt"] == tokens["expires_at"]
    wait_for_condition(cluster, "tools", e2e_namespace, "Ready", "True")
    # The flow started where start_url points and finished at the public URL; on `local` those
    # are two replicas, and neither did the other's half.
    started, completed = (
        "mcpgw_callback_flows_started_total",
        ('mcpgw_callback_flows_completed_total{result="Authorized"}'),
    )
    assert _metric(cluster.start_url, started) >= 1
    assert _metric(cluster.public_url, completed) >= 1
    if cluster.start_url != cluster.public_url:
        assert _metric(cluster.public_url, started) == 0
        assert _metric(cluster.start_url, completed) == 0
    logs = cluster.component_logs()
    for value in (tokens["access_token"], tokens["refresh_token"], done.code):
        assert value not in logs, "a token or code appears in a component's log"


def _metric(base_url: str, sample: str) -> float:
    """One sample of a replica's /metrics (0 when the labelled series does not exist yet)."""
    with httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False) as http:
        text = http.get(f"{base_url}/metrics").text
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _refresh_counters(cluster: Cluster) -> tuple[int, dict[str, int], int, int]:
    stats = cluster.peer_stats()
    return (
        stats["token_grants"].get("refresh_token", 0),
        dict(stats["token_errors"].get("refresh_token", {})),
        stats["refresh_token_reuse"],
        stats["grants_revoked"],
    )


def _annotate(cluster: Cluster, secret: str, namespace: str, *pairs: str) -> None:
    done = cluster.kubectl_run("annotate", "--overwrite", "secret", secret, "-n", namespace, *pairs)
    assert done.returncode == 0, done.stderr


def _request_refresh_twice_at_once(cluster: Cluster, secret: str, namespace: str) -> None:
    """Two refresh requests racing: two kubectl processes started together."""
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(
                _annotate, cluster, secret, namespace, f"{REFRESH_REQUESTED_ANNOTATION}={v}"
            )
            for v in ("trigger-1", "trigger-2")
        ]
        for future in futures:
            future.result()


def _wait_answered(cluster: Cluster, secret: str, namespace: str, old_access: str) -> JSON:
    """Until the access token changed and neither a request nor a lease is left on the Secret."""

    def answered() -> bool:
        current = cluster.get("secret", secret, namespace) or {}
        annotations = current.get("metadata", {}).get("annotations") or {}
        values = cluster.secret_values(secret, namespace) or {}
        return (
            values.get("access_token") != old_access
            and REFRESH_REQUESTED_ANNOTATION not in annotations
            and REFRESH_LEASE_ANNOTATION not in annotations
        )

    wait_until(answered, "the requested refresh to be answered")
    secret_body = cluster.get("secret", secret, namespace)
    assert secret_body is not None, "the token Secret is gone"
    return secret_body


def test_racing_refresh_requests_against_a_rotating_server_keep_the_token_set(
    cluster: Cluster, e2e_namespace: str
) -> None:
    apply_registered(cluster, "rotating", e2e_namespace)
    done = authorize_through_callback(cluster, "rotating", e2e_namespace, USER)
    wait_for_condition(cluster, "rotating", e2e_namespace, "Authorized", "True")
    name, ns = done.secret_name, e2e_namespace
    first = cluster.secret_values(name, ns) or {}

    # Phase 1, a free race: however the two requests interleave with the refresh they cause,
    # no refresh token is presented twice (the peer would revoke the grant) and nothing fails.
    before = _refresh_counters(cluster)
    _request_refresh_twice_at_once(cluster, name, ns)
    _wait_answered(cluster, name, ns, first["access_token"])
    time.sleep(QUIET_TICKS * cluster.refresh_tick_seconds)
    count, errors, reuse, revoked = _refresh_counters(cluster)
    assert 1 <= count - before[0] <= 2, f"{count - before[0]} refreshes for two requests"
    assert (errors, reuse, revoked) == before[1:], "a refresh token was reused or refused"
    wait_for_condition(cluster, "rotating", ns, "Authorized", "True")

    # Phase 2, both requests land while another operator process holds the refresh lease (a
    # rollout overlap): they must coalesce into exactly one refresh when the lease runs out.
    second = cluster.secret_values(name, ns) or {}
    before = _refresh_counters(cluster)
    until = datetime.now(UTC) + timedelta(seconds=HELD_LEASE_SECONDS)
    _annotate(cluster, name, ns, f"{REFRESH_LEASE_ANNOTATION}={lease_value('e2e-other', until)}")
    _request_refresh_twice_at_once(cluster, name, ns)
    assert datetime.now(UTC) < until, "both requests must land while the lease is held"
    assert (cluster.secret_values(name, ns) or {})["access_token"] == second["access_token"]
    assert _refresh_counters(cluster) == before, "a refresh ran despite another's lease"
    refreshed = _wait_answered(cluster, name, ns, second["access_token"])
    time.sleep(QUIET_TICKS * cluster.refresh_tick_seconds)
    count, errors, reuse, revoked = _refresh_counters(cluster)
    assert count == before[0] + 1, f"{count - before[0]} refreshes for two coalesced requests"
    assert (errors, reuse, revoked) == before[1:]

    # The token set survived: rotated, recorded in status, and the stored refresh token is the
    # live one at the server.
    third = cluster.secret_values(name, ns) or {}
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert REFRESH_ERROR_ANNOTATION not in (refreshed["metadata"].get("annotations") or {})
    wait_for_condition(cluster, "rotating", ns, "Authorized", "True")
    wait_for_condition(cluster, "rotating", ns, "Ready", "True")
    wait_until(
        lambda: (
            (cluster.get("mcpgateway", "rotating", ns) or {})["status"]["authorization"].get(
                "tokenExpiresAt"
            )
            == third["expires_at"]
        ),
        "status.authorization.tokenExpiresAt to follow the refresh",
    )
    _assert_refresh_token_is_live(cluster, ns, third["refresh_token"])
    logs = cluster.component_logs()
    for tokens in (first, second, third):
        for key in ("access_token", "refresh_token"):
            assert tokens[key] not in logs, f"a {key} appears in a component's log"


def _assert_refresh_token_is_live(cluster: Cluster, namespace: str, refresh_token: str) -> None:
    """Redeem it once at the token endpoint with the gateway's client (last: it rotates it)."""
    client = cluster.secret_values("rotating-oauth-client", namespace) or {}
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    with httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False) as http:
        if client.get("token_endpoint_auth_method") == "client_secret_post":
            credentials = {
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            }
            answer = http.post(client["token_endpoint"], data=form | credentials)
        else:
            basic = (client["client_id"], client["client_secret"])
            answer = http.post(client["token_endpoint"], data=form, auth=basic)
    assert answer.status_code == 200, answer.json().get("error")
