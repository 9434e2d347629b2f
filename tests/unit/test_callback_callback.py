"""GET /oauth/callback: every rejection with its status and reason, the exchange, the Secret."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.keyring import KeyRing
from tests.support.callback_fakes import (
    CLIENT_SECRET,
    ISSUER,
    KEY_A,
    KEY_B,
    PUBLIC_URL,
    USER_HEADER,
    Harness,
    make_settings,
)

ALICE = {USER_HEADER: "alice@example.test"}
JSON_ACCEPT = {"accept": "application/json"}
CODE = "authorization-code-value-42"
SECRET_VALUES = (CLIENT_SECRET, CODE, "access-token-value-1", "refresh-token-value-1")


@pytest.fixture(autouse=True)
def _quiet_test_client(caplog: pytest.LogCaptureFixture) -> None:
    # The test's own client logs the callback URLs it requests (code included); the service's
    # logs are what must stay clean.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="httpx")


@pytest.fixture
def harness() -> Harness:
    h = Harness(make_settings())
    h.kube.add_gateway("team-a", "github")
    h.kube.add_gateway("team-a", "gitlab")
    return h


async def start(http: httpx.AsyncClient, gateway: str = "team-a/github") -> dict[str, str]:
    response = await http.get(f"/oauth/authorize/{gateway}", headers=ALICE)
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


async def finish(
    http: httpx.AsyncClient, path: str = "/oauth/callback", **query: str
) -> httpx.Response:
    return await http.get(f"{path}?{urlencode(query)}", headers=JSON_ACCEPT)


def assert_no_secret(response: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    for value in SECRET_VALUES:
        assert value not in response.text
        assert value not in caplog.text


async def test_completes_a_flow_and_stores_the_tokens(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness.client() as http:
        sent = await start(http)
        response = await finish(http, state=sent["state"], code=CODE, iss=ISSUER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "Authorized"
    assert body["gateway"] == "team-a/github"
    name = body["secret"]
    assert name.startswith("github-oauth-token-")
    assert len(name) == len("github-oauth-token-") + 10
    # The exchange sent the pinned redirect URI, the verifier and the resource, with basic auth.
    (form,) = harness.token_endpoint.forms()
    assert form["code"] == CODE
    assert form["redirect_uri"] == f"{PUBLIC_URL}/oauth/callback"
    assert form["resource"] == "https://mcp.test/github"
    assert len(form["code_verifier"]) >= 43
    auth = harness.token_endpoint.requests[0].headers["authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode().startswith("client-github:")
    # The Secret: data, labels, owner, user annotation.
    data = harness.kube.secret_data("team-a", name)
    assert data is not None
    assert data["access_token"] == "access-token-value-1"
    assert data["refresh_token"] == "refresh-token-value-1"
    assert data["expires_at"] == "2027-01-15T09:00:00Z"  # now + expires_in
    meta = harness.kube.objects[f"/api/v1/namespaces/team-a/secrets/{name}"]["metadata"]
    assert meta["labels"]["mcpgw.dev/gateway"] == "github"
    assert meta["labels"]["mcpgw.dev/role"] == "token"
    assert meta["annotations"]["mcpgw.dev/user"] == "alice@example.test"
    assert meta["ownerReferences"][0]["uid"] == "uid-github"
    assert meta["ownerReferences"][0]["kind"] == "MCPGateway"
    assert_no_secret(response, caplog)
    assert harness.metric("mcpgw_callback_flows_completed_total", result="Authorized") == 1
    assert harness.metric("mcpgw_callback_token_exchanges_total", result="ok") == 1


async def test_html_success_page_escapes_the_user_name(harness: Harness) -> None:
    async with harness.client() as http:
        response = await http.get(
            "/oauth/authorize/team-a/github", headers={USER_HEADER: "<b>mallory</b>"}
        )
        state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
        page = await http.get(f"/oauth/callback?{urlencode({'state': state, 'code': CODE})}")
    assert page.status_code == 200
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page.text
    assert "<b>mallory" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_a_second_authorization_replaces_the_token_secret(harness: Harness) -> None:
    async with harness.client() as http:
        first = await finish(http, state=(await start(http))["state"], code=CODE)
        second = await finish(http, state=(await start(http))["state"], code=CODE)
    assert first.status_code == second.status_code == 200
    assert first.json()["secret"] == second.json()["secret"]
    secret = harness.kube.objects[f"/api/v1/namespaces/team-a/secrets/{first.json()['secret']}"]
    assert secret["metadata"]["resourceVersion"] != "1"


def _tamper(state: str) -> str:
    parts = state.split(".")
    parts[4] = ("B" if parts[4][0] != "B" else "C") + parts[4][1:]
    return ".".join(parts)


def _other_kid(state: str) -> str:
    return state.replace("v1.ka.", "v1.kz.", 1)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        pytest.param(lambda s: "", StateRejection.MALFORMED, id="empty"),
        pytest.param(lambda s: s[:-5], StateRejection.MALFORMED, id="truncated"),
        pytest.param(lambda s: s + "A" * 2000, StateRejection.MALFORMED, id="oversized"),
        pytest.param(lambda s: s[:-1] + "é", StateRejection.MALFORMED, id="non-ascii"),
        pytest.param(_tamper, StateRejection.SIGNATURE_INVALID, id="tampered"),
        pytest.param(_other_kid, StateRejection.SIGNATURE_INVALID, id="unknown-kid"),
    ],
)
async def test_refuses_broken_states_before_touching_redis(
    harness: Harness,
    mangle: Callable[[str], str],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        response = await finish(http, state=mangle(state), code=CODE)
    assert response.status_code == 400
    assert response.json()["reason"] == reason
    assert len(harness.store.records) == 1  # not consumed
    assert harness.token_endpoint.requests == []
    assert harness.metric("mcpgw_callback_state_rejections_total", reason=reason) == 1
    assert state not in response.text
    assert state not in caplog.text
    assert_no_secret(response, caplog)


async def test_missing_state_is_malformed(harness: Harness) -> None:
    async with harness.client() as http:
        response = await finish(http, code=CODE)
    assert response.status_code == 400
    body = response.json()
    assert body["reason"] == StateRejection.MALFORMED
    assert body["error"] == "Invalid or expired state parameter - possible replay attack"


async def test_expired_state(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        harness.now += 301
        response = await finish(http, state=state, code=CODE)
    assert response.json()["reason"] == StateRejection.EXPIRED
    assert len(harness.store.records) == 1


async def test_replayed_state(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        assert (await finish(http, state=state, code=CODE)).status_code == 200
        again = await finish(http, state=state, code=CODE)
    assert again.status_code == 400
    assert again.json()["reason"] == StateRejection.REPLAYED
    assert len(harness.token_endpoint.requests) == 1


async def test_unknown_state_signed_but_never_stored(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        harness.store.records.clear()  # as after a Redis restart
        response = await finish(http, state=state, code=CODE)
    assert response.json()["reason"] == StateRejection.UNKNOWN


async def test_another_gateways_state_at_a_per_gateway_callback(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http, "team-a/gitlab"))["state"]
        response = await finish(http, "/oauth/callback/team-a/github", state=state, code=CODE)
    assert response.status_code == 400
    assert response.json()["reason"] == StateRejection.GATEWAY_MISMATCH
    assert response.json()["error"] == "State parameter gateway mismatch"
    assert len(harness.store.records) == 1


async def test_response_from_another_issuer_is_a_gateway_mismatch(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        response = await finish(http, state=state, code=CODE, iss="https://evil.test")
    assert response.json()["reason"] == StateRejection.GATEWAY_MISMATCH
    assert harness.token_endpoint.requests == []


@pytest.mark.parametrize("cookie", [None, "x" * 43], ids=["no-cookie", "other-browser-cookie"])
async def test_state_completed_in_another_browser(harness: Harness, cookie: str | None) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        http.cookies.clear()
        if cookie is not None:
            http.cookies.set("mcpgw_flow", cookie, domain="callback.test", path="/oauth")
        response = await finish(http, state=state, code=CODE)
    assert response.status_code == 400
    assert response.json()["reason"] == StateRejection.BINDING_MISMATCH
    assert len(harness.store.records) == 1
    assert harness.token_endpoint.requests == []


async def test_access_denied_ends_the_flow_and_shows_the_redacted_description(
    harness: Harness,
) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        response = await finish(
            http,
            state=state,
            error="access_denied",
            error_description="user said no; access_token=abc123secret",
        )
        again = await finish(http, state=state, code=CODE)
    assert response.status_code == 403
    body = response.json()
    assert body["reason"] == Reason.ACCESS_DENIED
    assert body["oauthError"] == "access_denied"
    assert "user said no" in body["message"]
    assert "abc123secret" not in response.text
    assert again.json()["reason"] == StateRejection.REPLAYED  # the record was consumed


async def test_an_error_with_a_forged_state_shows_nothing_from_the_request(
    harness: Harness,
) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        response = await finish(
            http, state=_tamper(state), error="access_denied", error_description="Call 555-SCAM"
        )
    assert response.json()["reason"] == StateRejection.SIGNATURE_INVALID
    assert "SCAM" not in response.text


async def test_missing_code(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        response = await finish(http, state=state)
    assert response.status_code == 400
    assert response.json()["reason"] == Reason.AUTHORIZATION_CODE_MISSING
    assert harness.token_endpoint.requests == []


@pytest.mark.parametrize(
    ("reply", "result"),
    [
        pytest.param(
            httpx.Response(400, json={"error": "invalid_grant", "error_description": "bad code"}),
            "rejected",
            id="400-invalid-grant",
        ),
        pytest.param(httpx.Response(500, text="oops"), "failed", id="500"),
        pytest.param(httpx.Response(200, html="<html>login</html>"), "failed", id="html-200"),
    ],
)
async def test_token_endpoint_failures_are_not_retried(
    harness: Harness,
    reply: httpx.Response,
    result: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness.token_endpoint.respond = lambda _: reply
    async with harness.client() as http:
        state = (await start(http))["state"]
        response = await finish(http, state=state, code=CODE)
    assert response.status_code == 502
    body = response.json()
    assert body["reason"] == Reason.TOKEN_EXCHANGE_FAILED
    assert len(harness.token_endpoint.requests) == 1
    assert harness.metric("mcpgw_callback_token_exchanges_total", result=result) == 1
    assert not any(p.endswith("-oauth-token-") for p in harness.kube.objects)
    assert_no_secret(response, caplog)


async def test_invalid_grant_message_carries_the_servers_error(harness: Harness) -> None:
    harness.token_endpoint.respond = lambda _: httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "code expired"}
    )
    async with harness.client() as http:
        response = await finish(http, state=(await start(http))["state"], code=CODE)
    body = response.json()
    assert body["oauthError"] == "invalid_grant"
    assert "code expired" in body["message"]


async def test_redis_down_at_the_callback_is_a_503(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        harness.store.down = True
        response = await finish(http, state=state, code=CODE)
    assert response.status_code == 503
    assert response.json()["reason"] == Reason.STATE_STORE_UNREACHABLE
    assert response.headers["retry-after"] == "30"
    assert harness.token_endpoint.requests == []


async def test_a_flow_survives_a_key_rotation(harness: Harness) -> None:
    async with harness.client() as http:
        state = (await start(http))["state"]
        # The new key signs from now on; the old one still verifies.
        harness.ring._install([("kb", KEY_B), ("ka", KEY_A)])
        newer = (await start(http))["state"]
        old_done = await finish(http, state=state, code=CODE)
        new_done = await finish(http, state=newer, code=CODE)
    assert newer.startswith("v1.kb.")
    assert old_done.status_code == new_done.status_code == 200


async def test_a_state_from_a_foreign_ring_is_refused(harness: Harness) -> None:
    foreign = KeyRing([("ka", b"Z" * 32)])
    state = foreign.sign_state(gateway="team-a/github", binding="x" * 43, now=harness.now).state
    async with harness.client() as http:
        http.cookies.set("mcpgw_flow", "x" * 43, domain="callback.test", path="/oauth")
        response = await finish(http, state=state, code=CODE)
    assert response.json()["reason"] == StateRejection.SIGNATURE_INVALID
