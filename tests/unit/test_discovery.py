"""Discovery: RFC 9728 from the 401 challenge and well-known URLs, RFC 8414/OpenID fallbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from mcpgw_core.api import Reason
from mcpgw_core.discovery import Discovery, DiscoveryError, discover
from mcpgw_core.discovery_steps import (
    authorization_server_metadata_urls,
    protected_resource_metadata_urls,
)
from mcpgw_core.metadata import Hop
from tests.support.fake_http import ISSUER, MCP_URL, FakeHTTP, as_metadata, prm_metadata

AS_8414 = "https://as.example.test/.well-known/oauth-authorization-server/tenant1"
AS_OIDC_INSERTED = "https://as.example.test/.well-known/openid-configuration/tenant1"
AS_OIDC_APPENDED = "https://as.example.test/tenant1/.well-known/openid-configuration"
PRM_INSERTED = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
PRM_ROOT = "https://mcp.example.test/.well-known/oauth-protected-resource"
PRM_CUSTOM = "https://meta.example.test/prm.json"


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        pytest.param(ISSUER, [AS_8414, AS_OIDC_INSERTED, AS_OIDC_APPENDED], id="path-issuer"),
        pytest.param(
            ISSUER + "/", [AS_8414, AS_OIDC_INSERTED, AS_OIDC_APPENDED], id="trailing-slash"
        ),
        pytest.param(
            "https://as.example.test",
            [
                "https://as.example.test/.well-known/oauth-authorization-server",
                "https://as.example.test/.well-known/openid-configuration",
            ],
            id="root-issuer-no-repeats",
        ),
        pytest.param(
            "http://127.0.0.1:9000/a/b",
            [
                "http://127.0.0.1:9000/.well-known/oauth-authorization-server/a/b",
                "http://127.0.0.1:9000/.well-known/openid-configuration/a/b",
                "http://127.0.0.1:9000/a/b/.well-known/openid-configuration",
            ],
            id="port-and-deep-path",
        ),
    ],
)
def test_authorization_server_metadata_urls(issuer: str, expected: list[str]) -> None:
    assert authorization_server_metadata_urls(issuer) == expected


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        pytest.param(MCP_URL, [PRM_INSERTED, PRM_ROOT], id="path"),
        pytest.param("https://mcp.example.test/", [PRM_ROOT], id="root"),
        pytest.param(
            "https://mcp.example.test/mcp?v=2", [PRM_INSERTED + "?v=2", PRM_ROOT], id="query"
        ),
    ],
)
def test_protected_resource_metadata_urls(resource: str, expected: list[str]) -> None:
    assert protected_resource_metadata_urls(resource) == expected


def challenge(url: str = PRM_CUSTOM, extra: str = "") -> dict[str, str]:
    return {"www-authenticate": f'Bearer error="invalid_token", resource_metadata="{url}"{extra}'}


async def run(fake: FakeHTTP, *, issuer: str | None = None) -> Discovery:
    async with fake.client() as client:
        return await asyncio.wait_for(discover(client, resource_url=MCP_URL, issuer=issuer), 10)


async def fails(fake: FakeHTTP, *, issuer: str | None = None) -> DiscoveryError:
    with pytest.raises(DiscoveryError) as caught:
        await run(fake, issuer=issuer)
    return caught.value


async def test_full_chain_from_the_401_challenge() -> None:
    fake = FakeHTTP()
    fake.status("GET", MCP_URL, 401, headers=challenge(extra=', scope="mcp:read mcp:write"'))
    fake.json("GET", PRM_CUSTOM, prm_metadata())
    fake.json("GET", AS_8414, as_metadata(client_id_metadata_document_supported=True))

    found = await run(fake)

    assert found.issuer == ISSUER
    assert found.resource == MCP_URL
    assert found.resource_metadata_url == PRM_CUSTOM
    assert found.challenge_scope == "mcp:read mcp:write"
    assert found.authorization_endpoint == f"{ISSUER}/auth"
    assert found.token_endpoint == f"{ISSUER}/token"
    assert found.registration_endpoint == f"{ISSUER}/reg"
    server = found.authorization_server
    assert server.code_challenge_methods_supported == ("S256",)
    assert server.token_endpoint_auth_methods_supported == ("client_secret_basic", "none")
    assert server.grant_types_supported == ("authorization_code", "refresh_token")
    assert server.scopes_supported == ("openid", "mcp")
    assert server.client_id_metadata_document_supported is True
    assert found.raw_metadata["issuer"] == ISSUER
    assert found.hops == (
        Hop(MCP_URL, "HTTP 401 with resource_metadata"),
        Hop(PRM_CUSTOM, "ok"),
        Hop(AS_8414, "ok"),
    )
    probe = fake.requests[0]
    assert "authorization" not in probe.headers, "the probe must be unauthenticated"


async def test_well_known_fallbacks_are_tried_in_order() -> None:
    fake = FakeHTTP()
    fake.status("GET", MCP_URL, 401, headers={"www-authenticate": 'Bearer realm="mcp"'})
    fake.json("GET", PRM_ROOT, prm_metadata(resource="https://mcp.example.test"))
    fake.json("GET", AS_OIDC_APPENDED, as_metadata())

    found = await run(fake)

    assert [(hop.url, hop.outcome) for hop in found.hops] == [
        (MCP_URL, "HTTP 401 without resource_metadata"),
        (PRM_INSERTED, "HTTP 404"),
        (PRM_ROOT, "ok"),
        (AS_8414, "HTTP 404"),
        (AS_OIDC_INSERTED, "HTTP 404"),
        (AS_OIDC_APPENDED, "ok"),
    ]
    assert found.resource == "https://mcp.example.test"


async def test_a_given_issuer_skips_protected_resource_discovery() -> None:
    fake = FakeHTTP()
    fake.json("GET", AS_8414, as_metadata())
    found = await run(fake, issuer=ISSUER)
    assert fake.urls() == [f"GET {AS_8414}"]
    assert found.protected_resource is None
    assert found.resource == MCP_URL


async def test_defaults_apply_when_the_server_is_silent() -> None:
    fake = FakeHTTP()
    doc = as_metadata(
        grant_types_supported=None,
        token_endpoint_auth_methods_supported=None,
        registration_endpoint=None,
    )
    fake.json("GET", AS_8414, doc)
    server = (await run(fake, issuer=ISSUER)).authorization_server
    assert server.grant_types_supported == ("authorization_code", "implicit")
    assert server.token_endpoint_auth_methods_supported == ("client_secret_basic",)
    assert server.registration_endpoint is None
    assert server.client_id_metadata_document_supported is False


async def test_an_mcp_server_that_streams_forever_does_not_hang_the_probe() -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.01)
            yield b"event: ping\n\n"

    fake = FakeHTTP()
    fake.on("GET", MCP_URL, lambda _: httpx.Response(200, content=endless()))
    fake.json("GET", PRM_INSERTED, prm_metadata())
    fake.json("GET", AS_8414, as_metadata())
    found = await run(fake)
    assert found.hops[0] == Hop(MCP_URL, "HTTP 200, no authentication challenge")


@pytest.mark.parametrize(
    ("header", "outcome"),
    [
        pytest.param('Bearer realm="x', "HTTP 401, malformed WWW-Authenticate", id="malformed"),
        pytest.param(
            'Bearer resource_metadata="javascript:alert(1)"',
            "HTTP 401, resource_metadata is not an http(s) URL",
            id="not-http",
        ),
        pytest.param(
            f'Basic resource_metadata="{PRM_CUSTOM}"',
            "HTTP 401 without resource_metadata",
            id="not-bearer",
        ),
    ],
)
async def test_unusable_challenges_fall_back_to_well_known(header: str, outcome: str) -> None:
    fake = FakeHTTP()
    fake.status("GET", MCP_URL, 401, headers={"www-authenticate": header})
    fake.json("GET", PRM_INSERTED, prm_metadata())
    fake.json("GET", AS_8414, as_metadata())
    found = await run(fake)
    assert found.hops[0] == Hop(MCP_URL, outcome)
    assert f"GET {PRM_CUSTOM}" not in fake.urls()


def serve_everywhere(fake: FakeHTTP, respond: object) -> None:
    for url in (AS_8414, AS_OIDC_INSERTED, AS_OIDC_APPENDED):
        fake.on("GET", url, respond)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("respond", "reason", "retryable", "outcome"),
    [
        pytest.param(
            lambda _: httpx.Response(404), Reason.DISCOVERY_FAILED, False, "HTTP 404", id="404"
        ),
        pytest.param(
            lambda _: httpx.Response(500),
            Reason.AUTHORIZATION_SERVER_ERROR,
            True,
            "HTTP 500",
            id="500",
        ),
        pytest.param(
            lambda _: httpx.Response(
                200, text="<html></html>", headers={"content-type": "text/html"}
            ),
            Reason.METADATA_INVALID,
            False,
            "HTML (HTTP 200), not JSON",
            id="html",
        ),
        pytest.param(
            lambda _: httpx.Response(200, text='{"issuer": '),
            Reason.METADATA_INVALID,
            False,
            "malformed JSON (HTTP 200)",
            id="malformed-json",
        ),
        pytest.param(
            lambda _: httpx.Response(200, json=as_metadata(issuer="https://evil.test")),
            Reason.ISSUER_MISMATCH,
            False,
            f"IssuerMismatch: declares issuer 'https://evil.test', expected {ISSUER}",
            id="wrong-issuer",
        ),
        pytest.param(
            lambda _: httpx.Response(
                200, json=as_metadata(code_challenge_methods_supported=["plain"])
            ),
            Reason.PKCE_UNSUPPORTED,
            False,
            "PKCEUnsupported: supports PKCE methods 'plain'; S256 is required",
            id="no-s256",
        ),
        pytest.param(
            lambda _: httpx.Response(200, json=as_metadata(code_challenge_methods_supported=None)),
            Reason.PKCE_UNSUPPORTED,
            False,
            "PKCEUnsupported: code_challenge_methods_supported is absent, so PKCE is unsupported;"
            " S256 is required",
            id="pkce-absent",
        ),
        pytest.param(
            lambda _: httpx.Response(200, json=as_metadata(token_endpoint="not a url")),
            Reason.METADATA_INVALID,
            False,
            "MetadataInvalid: token_endpoint 'not a url' is not an http(s) URL",
            id="bad-endpoint",
        ),
    ],
)
async def test_authorization_server_faults(
    respond: object, reason: str, retryable: bool, outcome: str
) -> None:
    fake = FakeHTTP()
    serve_everywhere(fake, respond)

    error = await fails(fake, issuer=ISSUER)

    assert (error.reason, error.retryable) == (reason, retryable)
    assert [hop.url for hop in error.hops] == [AS_8414, AS_OIDC_INSERTED, AS_OIDC_APPENDED]
    assert {hop.outcome for hop in error.hops} == {outcome}
    assert error.message.startswith(
        f"no usable authorization server metadata for issuer {ISSUER}: "
    )
    assert f"{AS_8414} ({outcome})" in error.message
    again = await fails(fake, issuer=ISSUER)
    assert again.message == error.message, "messages must be stable across attempts"


async def test_the_most_telling_failure_names_the_reason() -> None:
    fake = FakeHTTP()
    fake.status("GET", AS_8414, 200, text="<html>", headers={"content-type": "text/html"})
    fake.json("GET", AS_OIDC_INSERTED, as_metadata(issuer="https://other.test"))
    error = await fails(fake, issuer=ISSUER)
    assert error.reason == Reason.ISSUER_MISMATCH


async def test_a_bad_document_is_skipped_when_a_later_one_is_good() -> None:
    fake = FakeHTTP()
    fake.json("GET", AS_8414, as_metadata(code_challenge_methods_supported=None))
    fake.json("GET", AS_OIDC_INSERTED, as_metadata())
    found = await run(fake, issuer=ISSUER)
    assert found.authorization_server.metadata_url == AS_OIDC_INSERTED


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        pytest.param(httpx.ConnectError("Connection refused"), "connection refused", id="refused"),
        pytest.param(httpx.ReadTimeout("slow"), "timed out", id="slow"),
    ],
)
async def test_an_unreachable_server_is_not_asked_three_times(exc: Exception, detail: str) -> None:
    fake = FakeHTTP()
    fake.fail("GET", AS_8414, exc)
    error = await fails(fake, issuer=ISSUER)
    assert (error.reason, error.retryable) == (Reason.AUTHORIZATION_SERVER_UNREACHABLE, True)
    assert error.hops == (Hop(AS_8414, detail),)
    assert len(fake.requests) == 1


async def test_an_unreachable_mcp_server_fails_discovery_retryably() -> None:
    fake = FakeHTTP()
    fake.fail("GET", MCP_URL, httpx.ConnectError("Connection refused"))
    error = await fails(fake)
    assert (error.reason, error.retryable) == (Reason.DISCOVERY_FAILED, True)
    assert error.message == f"MCP server GET {MCP_URL}: connection refused"
    assert error.hops == (Hop(MCP_URL, "connection refused"),)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        pytest.param(
            prm_metadata(resource="https://other.test/mcp"),
            Reason.RESOURCE_MISMATCH,
            id="other-host",
        ),
        pytest.param(
            prm_metadata(resource="https://mcp.example.test/mcpx"),
            Reason.RESOURCE_MISMATCH,
            id="not-a-parent-path",
        ),
        pytest.param(
            prm_metadata(authorization_servers=[]), Reason.METADATA_INVALID, id="no-servers"
        ),
        pytest.param(
            prm_metadata(authorization_servers=["https://as.test/?q=1"]),
            Reason.METADATA_INVALID,
            id="issuer-with-query",
        ),
        pytest.param(prm_metadata(resource=None), Reason.METADATA_INVALID, id="no-resource"),
    ],
)
async def test_protected_resource_metadata_faults(doc: dict[str, object], reason: str) -> None:
    fake = FakeHTTP()
    fake.status("GET", MCP_URL, 401, headers=challenge())
    fake.json("GET", PRM_CUSTOM, doc)
    error = await fails(fake)
    assert (error.reason, error.retryable) == (reason, False)
    assert error.message.startswith(f"no usable protected resource metadata for {MCP_URL}: ")
    assert [hop.url for hop in error.hops] == [MCP_URL, PRM_CUSTOM, PRM_INSERTED, PRM_ROOT]


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(MCP_URL, id="exact"),
        pytest.param(MCP_URL + "/", id="trailing-slash"),
        pytest.param("HTTPS://MCP.example.test:443/mcp", id="case-and-default-port"),
        pytest.param("https://mcp.example.test", id="origin"),
    ],
)
async def test_resource_identifiers_that_cover_the_mcp_url(resource: str) -> None:
    fake = FakeHTTP()
    fake.status("GET", MCP_URL, 401, headers=challenge())
    fake.json("GET", PRM_CUSTOM, prm_metadata(resource=resource))
    fake.json("GET", AS_8414, as_metadata())
    found = await run(fake)
    assert found.resource == resource


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("https://as.example.test/t?x=1", id="query"),
        pytest.param("ftp://as.example.test", id="scheme"),
    ],
)
async def test_an_unusable_issuer_is_refused_before_any_request(issuer: str) -> None:
    fake = FakeHTTP()
    error = await fails(fake, issuer=issuer)
    assert (error.reason, error.retryable) == (Reason.DISCOVERY_FAILED, False)
    assert fake.requests == []
