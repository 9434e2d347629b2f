"""POST /oauth/links and `?link=`: TokenReview, SubjectAccessReview, single use, expiry, secrecy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from callback_service.app import create_app
from callback_service.link_store import LINK_TOKEN_RE, LinkGrant, link_rejected
from callback_service.resources import KeySource, Resources
from callback_service.settings import CallbackSettings
from mcpgw_core.api import Reason
from mcpgw_core.http import build_client
from mcpgw_core.kube import KubeError
from tests.support.callback_fakes import PUBLIC_URL, FakeKube, Harness, make_settings

JSON = dict[str, Any]
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXZhbHVlLTAxMjM0NTY3ODk"
BOB = "system:serviceaccount:team-a:bob"
BEARER = {"authorization": f"Bearer {TOKEN}", "accept": "application/json"}
MINT = "/oauth/links/team-a/github"
JSON_ACCEPT = {"accept": "application/json"}


class ReviewingKube(FakeKube):
    """FakeKube plus the review APIs: `authenticated` tokens, `allowed` (user, verb, name)."""

    def __init__(self) -> None:
        super().__init__()
        self.authenticated: dict[str, JSON] = {}
        self.allowed: set[tuple[str, str, str]] = set()
        self.reviews: list[JSON] = []
        self.review_error: KubeError | None = None

    async def create(self, path: str, body: JSON) -> JSON:
        if not path.endswith(("/tokenreviews", "/subjectaccessreviews")):
            return await super().create(path, body)
        self.calls.append(("POST", path))
        self.reviews.append(body)
        if self.review_error is not None:
            raise self.review_error
        if body["kind"] == "TokenReview":
            user = self.authenticated.get(body["spec"]["token"])
            status: JSON = {"authenticated": True, "user": user} if user else {
                "authenticated": False, "error": "invalid bearer token"}  # fmt: skip
            return {**body, "status": status}
        attrs = body["spec"]["resourceAttributes"]
        key = (body["spec"]["user"], attrs["verb"], attrs["name"])
        return {**body, "status": {"allowed": key in self.allowed}}


@dataclass
class MemoryLinks:
    """The link store's contract in a dict, with tombstones."""

    grants: dict[str, LinkGrant] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    async def put(self, token: str, grant: LinkGrant, ttl: float) -> None:
        assert ttl > 0
        self.grants[token] = grant

    async def take(self, token: str) -> LinkGrant:
        grant = self.grants.pop(token, None)
        if grant is not None:
            self.used.add(token)
            return grant
        if token in self.used:
            raise link_rejected(Reason.LINK_REPLAYED, "already used")
        raise link_rejected(Reason.LINK_UNKNOWN, "unknown")


@dataclass
class LinkHarness(Harness):
    """`Harness` whose resources also hold the in-memory link store."""

    links: MemoryLinks = field(default_factory=MemoryLinks)

    def build(self) -> FastAPI:
        def factory(_: CallbackSettings) -> Resources:
            self.resources = Resources(
                store=self.store,
                keys=KeySource.of(self.ring),
                http=build_client(transport=httpx.MockTransport(self.token_endpoint)),
                kube=self.kube,
                clock=lambda: self.now,
                links=self.links,
            )
            return self.resources

        return create_app(self.settings, resources_factory=factory)


@pytest.fixture
def harness() -> LinkHarness:
    h = LinkHarness(make_settings(), kube=ReviewingKube())
    h.kube.add_gateway("team-a", "github")
    h.kube.add_gateway("team-a", "gitlab")
    kube = h.kube
    assert isinstance(kube, ReviewingKube)
    kube.authenticated[TOKEN] = {"username": BOB, "uid": "u-1", "groups": ["system:authenticated"]}
    kube.allowed.add((BOB, "update", "github"))
    return h


def reviewing(h: LinkHarness) -> ReviewingKube:
    assert isinstance(h.kube, ReviewingKube)
    return h.kube


async def test_mints_a_link_for_a_user_rbac_allows(harness: LinkHarness) -> None:
    async with harness.client("192.0.2.9") as http:
        response = await http.post(MINT, headers=BEARER)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["user"] == BOB
    assert body["gateway"] == "team-a/github"
    url = urlsplit(body["authorizeURL"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{PUBLIC_URL}/oauth/authorize/team-a/github"
    token = parse_qs(url.query)["link"][0]
    assert LINK_TOKEN_RE.fullmatch(token)
    assert body["expiresAt"] == "2027-01-15T08:02:00Z"  # the harness clock + 120 s
    (grant,) = harness.links.grants.values()
    assert grant == LinkGrant(user=BOB, gateway="team-a/github", expires_at=harness.now + 120)
    # What was asked of the API server: the token, then update on exactly this gateway.
    token_review, access_review = reviewing(harness).reviews
    assert token_review["spec"] == {"token": TOKEN}
    spec = access_review["spec"]
    assert spec["user"] == BOB
    assert spec["uid"] == "u-1"
    assert spec["groups"] == ["system:authenticated"]
    assert spec["resourceAttributes"] == {
        "namespace": "team-a", "verb": "update", "group": "mcpgw.dev",
        "resource": "mcpgateways", "name": "github",
    }  # fmt: skip
    assert harness.metric("mcpgw_callback_links_minted_total") == 1


async def test_link_starts_a_flow_once_from_any_address(harness: LinkHarness) -> None:
    async with harness.client("192.0.2.9") as http:
        link = (await http.post(MINT, headers=BEARER)).json()["authorizeURL"]
        started = await http.get(link)
        again = await http.get(link, headers=JSON_ACCEPT)
    assert started.status_code == 302
    (record,) = harness.store.records.values()
    assert f'"user":"{BOB}"' in record
    assert again.status_code == 401
    assert again.json()["reason"] == Reason.LINK_REPLAYED
    assert (
        harness.metric("mcpgw_callback_authorize_rejections_total", reason=Reason.LINK_REPLAYED)
        == 1
    )


@pytest.mark.parametrize(
    ("move", "path", "reason"),
    [
        pytest.param(121, "/oauth/authorize/team-a/github", Reason.LINK_EXPIRED, id="expired"),
        pytest.param(0, "/oauth/authorize/team-a/gitlab", Reason.LINK_GATEWAY_MISMATCH,
                     id="other-gateway"),
    ],
)  # fmt: skip
async def test_refuses_expired_or_misplaced_links(
    harness: LinkHarness, move: float, path: str, reason: str
) -> None:
    async with harness.client() as http:
        link = (await http.post(MINT, headers=BEARER)).json()["authorizeURL"]
        harness.now += move
        token = parse_qs(urlsplit(link).query)["link"][0]
        refused = await http.get(path, params={"link": token}, headers=JSON_ACCEPT)
        burned = await http.get(link, headers=JSON_ACCEPT)
    assert refused.status_code == 401
    assert refused.json()["reason"] == reason
    assert burned.json()["reason"] == Reason.LINK_REPLAYED
    assert harness.store.records == {}


@pytest.mark.parametrize(
    "link", [pytest.param("A" * 43, id="unknown"), pytest.param("x<y", id="malformed")]
)
async def test_refuses_links_never_minted(harness: LinkHarness, link: str) -> None:
    async with harness.client() as http:
        response = await http.get(
            "/oauth/authorize/team-a/github", params={"link": link}, headers=JSON_ACCEPT
        )
    assert response.status_code == 401
    assert response.json()["reason"] == Reason.LINK_UNKNOWN


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        pytest.param({}, 401, Reason.UNAUTHENTICATED, id="no-header"),
        pytest.param({"authorization": "Basic Ym9iOnB3"}, 401, Reason.UNAUTHENTICATED,
                     id="basic"),
        pytest.param({"authorization": "Bearer a b"}, 401, Reason.UNAUTHENTICATED,
                     id="two-words"),
        pytest.param({"authorization": "Bearer " + "x" * 20000}, 401,
                     Reason.BEARER_TOKEN_REJECTED, id="oversized"),
        pytest.param({"authorization": "Bearer wrong-token-value"}, 401,
                     Reason.BEARER_TOKEN_REJECTED, id="not-authenticated"),
    ],
)  # fmt: skip
async def test_refuses_callers_kubernetes_does_not_know(
    harness: LinkHarness, headers: dict[str, str], status: int, reason: str
) -> None:
    async with harness.client() as http:
        response = await http.post(MINT, headers=headers)
    assert response.status_code == status
    assert response.json()["reason"] == reason
    assert harness.links.grants == {}
    assert "wrong-token-value" not in response.text
    assert harness.metric("mcpgw_callback_link_rejections_total", reason=reason) == 1


async def test_refuses_a_user_rbac_does_not_allow(harness: LinkHarness) -> None:
    reviewing(harness).allowed.clear()
    reviewing(harness).allowed.add((BOB, "get", "github"))
    async with harness.client() as http:
        response = await http.post(MINT, headers=BEARER)
    assert response.status_code == 403
    assert response.json()["reason"] == Reason.FORBIDDEN
    assert response.json()["message"] == f"{BOB} is not allowed to update mcpgateway team-a/github"
    assert harness.links.grants == {}


async def test_allowed_but_absent_gateway_is_404(harness: LinkHarness) -> None:
    reviewing(harness).allowed.add((BOB, "update", "absent"))
    async with harness.client() as http:
        response = await http.post("/oauth/links/team-a/absent", headers=BEARER)
    assert response.status_code == 404
    assert response.json()["reason"] == Reason.GATEWAY_NOT_FOUND
    assert harness.links.grants == {}


async def test_review_failures_are_503_and_never_show_the_token(
    harness: LinkHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # Even an API message that quoted the token must not carry it further.
    reviewing(harness).review_error = KubeError(403, "Forbidden", f"cannot review {TOKEN}")
    with caplog.at_level(logging.DEBUG):
        async with harness.client() as http:
            response = await http.post(MINT, headers=BEARER)
            link_body = (await http.get("/oauth/authorize/team-a/github?link=" + "B" * 43)).text
    assert response.status_code == 503
    assert response.json()["reason"] == Reason.KUBERNETES_UNAVAILABLE
    assert response.headers["retry-after"] == "30"
    for text in (response.text, caplog.text, link_body):
        assert TOKEN not in text
        assert TOKEN.split(".")[2] not in text
