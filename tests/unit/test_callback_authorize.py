"""GET /oauth/authorize: who may start a flow, the redirect it answers, the record and cookie."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from callback_service.settings import AuthMode
from mcpgw_core.api import Reason
from mcpgw_core.kube import KubeError
from mcpgw_core.pkce import s256_challenge
from tests.support.callback_fakes import (
    CLIENT_SECRET,
    ISSUER,
    PUBLIC_URL,
    USER_HEADER,
    Harness,
    make_settings,
)

AUTHORIZE = "/oauth/authorize/team-a/github"
ALICE = {USER_HEADER: "alice@example.test"}


@pytest.fixture
def harness() -> Harness:
    h = Harness(make_settings())
    h.kube.add_gateway("team-a", "github")
    return h


async def test_redirects_to_the_authorization_endpoint_with_pkce_and_state(
    harness: Harness,
) -> None:
    async with harness.client() as http:
        response = await http.get(AUTHORIZE, headers=ALICE)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["tenant"] == "t1"  # the endpoint's own query is kept
    assert query["response_type"] == "code"
    assert query["client_id"] == "client-github"
    assert query["redirect_uri"] == f"{PUBLIC_URL}/oauth/callback"
    assert query["scope"] == "openid mcp:tools"
    assert query["resource"] == "https://mcp.test/github"
    assert query["code_challenge_method"] == "S256"
    assert query["state"].startswith("v1.ka.")
    # The record holds the verifier whose challenge went out, and who asked.
    (raw,) = harness.store.records.values()
    assert '"user":"alice@example.test"' in raw
    assert '"gateway":"team-a/github"' in raw
    verifier = raw.split('"code_verifier":"')[1].split('"')[0]
    assert s256_challenge(verifier) == query["code_challenge"]
    assert CLIENT_SECRET not in response.headers["location"]
    assert harness.metric("mcpgw_callback_flows_started_total") == 1


async def test_sets_an_httponly_secure_lax_binding_cookie_scoped_to_oauth(
    harness: Harness,
) -> None:
    async with harness.client() as http:
        response = await http.get(AUTHORIZE, headers=ALICE)
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("mcpgw_flow=")
    for attribute in ("httponly", "secure", "samesite=lax", "path=/oauth"):
        assert attribute in cookie
    assert response.headers["cache-control"] == "no-store"


async def test_cookie_is_not_secure_on_a_plain_http_public_url() -> None:
    harness = Harness(make_settings(public_url="http://127.0.0.1:18080"))
    harness.kube.add_gateway(
        "team-a", "github", redirect_uri="http://127.0.0.1:18080/oauth/callback"
    )
    async with harness.client() as http:
        response = await http.get(AUTHORIZE, headers=ALICE)
    assert response.status_code == 302
    assert "secure" not in response.headers["set-cookie"].lower()


async def test_one_browser_keeps_its_binding_across_flows(harness: Harness) -> None:
    async with harness.client() as http:
        first = await http.get(AUTHORIZE, headers=ALICE)
        second = await http.get(AUTHORIZE, headers=ALICE)
    value = first.cookies["mcpgw_flow"]
    assert second.cookies["mcpgw_flow"] == value
    assert len(harness.store.records) == 2


@pytest.mark.parametrize(
    ("address", "headers", "reason"),
    [
        pytest.param("10.0.0.5", {}, Reason.UNAUTHENTICATED, id="no-header"),
        pytest.param("10.0.0.5", {USER_HEADER: "  "}, Reason.UNAUTHENTICATED, id="blank-header"),
        pytest.param("10.0.0.5", {USER_HEADER: "a\x01b"}, Reason.UNAUTHENTICATED, id="control"),
        pytest.param("192.0.2.9", ALICE, Reason.UNTRUSTED_PROXY, id="header-from-untrusted"),
    ],
)
async def test_refuses_unauthenticated_callers(
    harness: Harness, address: str, headers: dict[str, str], reason: str
) -> None:
    async with harness.client(address) as http:
        response = await http.get(AUTHORIZE, headers={**headers, "accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["reason"] == reason
    assert harness.store.records == {}
    assert harness.kube.calls == []
    assert harness.metric("mcpgw_callback_authorize_rejections_total", reason=reason) == 1


async def test_dev_mode_needs_no_header() -> None:
    harness = Harness(make_settings(auth_mode=AuthMode.DEV_INSECURE, dev_user="dev"))
    harness.kube.add_gateway("team-a", "github")
    async with harness.client("192.0.2.9") as http:
        response = await http.get(AUTHORIZE)
    assert response.status_code == 302
    assert '"user":"dev"' in next(iter(harness.store.records.values()))


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        pytest.param("/oauth/authorize/team-a/absent", 404, Reason.GATEWAY_NOT_FOUND, id="absent"),
        pytest.param("/oauth/authorize/Team_A/x", 404, Reason.GATEWAY_NOT_FOUND, id="bad-name"),
        pytest.param("/oauth/authorize/team-a/unreg", 409, Reason.CLIENT_NOT_REGISTERED,
                     id="no-client-secret"),
    ],
)  # fmt: skip
async def test_refuses_unknown_or_unregistered_gateways(
    harness: Harness, path: str, status: int, reason: str
) -> None:
    harness.kube.add_gateway("team-a", "unreg")
    del harness.kube.objects["/api/v1/namespaces/team-a/secrets/unreg-oauth-client"]
    async with harness.client() as http:
        response = await http.get(path, headers={**ALICE, "accept": "application/json"})
    assert response.status_code == status
    assert response.json()["reason"] == reason
    assert harness.store.records == {}


async def test_refuses_a_client_registered_for_another_redirect_uri(harness: Harness) -> None:
    harness.kube.add_gateway("team-a", "moved", redirect_uri="https://elsewhere.test/cb")
    async with harness.client() as http:
        response = await http.get(
            "/oauth/authorize/team-a/moved", headers={**ALICE, "accept": "application/json"}
        )
    assert response.status_code == 409
    assert response.json()["reason"] == Reason.REDIRECT_URI_MISMATCH


async def test_redis_down_fails_closed_with_503(harness: Harness) -> None:
    harness.store.down = True
    async with harness.client() as http:
        response = await http.get(AUTHORIZE, headers={**ALICE, "accept": "application/json"})
    assert response.status_code == 503
    assert response.json()["reason"] == Reason.STATE_STORE_UNREACHABLE
    assert "location" not in response.headers


async def test_kubernetes_failure_is_a_503(harness: Harness) -> None:
    harness.kube.fail_with = KubeError(0, "Unreachable", "GET /apis: ConnectError")
    async with harness.client() as http:
        response = await http.get(AUTHORIZE, headers={**ALICE, "accept": "application/json"})
    assert response.status_code == 503
    assert response.json()["reason"] == Reason.KUBERNETES_UNAVAILABLE


async def test_html_error_page_escapes_and_names_the_reason(harness: Harness) -> None:
    async with harness.client() as http:
        response = await http.get(
            "/oauth/authorize/team-a/absent", headers={**ALICE, "accept": "text/html"}
        )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Reason: GatewayNotFound" in response.text
    assert "<script" not in response.text
