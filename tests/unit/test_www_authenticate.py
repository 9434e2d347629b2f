"""WWW-Authenticate parsing: quoted strings, several parameters, challenges and header lines."""

from __future__ import annotations

import pytest

from mcpgw_core.www_authenticate import (
    Challenge,
    ChallengeSyntaxError,
    bearer_param,
    parse_challenges,
)

PRM = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            [f'Bearer resource_metadata="{PRM}"'],
            [Challenge("bearer", {"resource_metadata": PRM})],
            id="single-param",
        ),
        pytest.param(
            [f'Bearer realm="a, b", error="invalid_token", resource_metadata="{PRM}"'],
            [
                Challenge(
                    "bearer",
                    {"realm": "a, b", "error": "invalid_token", "resource_metadata": PRM},
                )
            ],
            id="comma-inside-quotes",
        ),
        pytest.param(
            [f'Basic realm="x", Bearer resource_metadata="{PRM}", scope="a b"'],
            [
                Challenge("basic", {"realm": "x"}),
                Challenge("bearer", {"resource_metadata": PRM, "scope": "a b"}),
            ],
            id="two-challenges-one-line",
        ),
        pytest.param(
            ['Basic realm="x"', f'Bearer resource_metadata="{PRM}"'],
            [Challenge("basic", {"realm": "x"}), Challenge("bearer", {"resource_metadata": PRM})],
            id="two-header-lines",
        ),
        pytest.param(
            [f"Negotiate abc+/==, Bearer resource_metadata={PRM}"],
            [
                Challenge("negotiate", {}, "abc+/=="),
                Challenge("bearer", {"resource_metadata": PRM}),
            ],
            id="token68-then-unquoted-url",
        ),
        pytest.param(
            [r'Bearer realm="say \"hi\" \\ there"'],
            [Challenge("bearer", {"realm": 'say "hi" \\ there'})],
            id="escaped-quotes",
        ),
        pytest.param(
            [f'BEARER Resource_Metadata = "{PRM}"'],
            [Challenge("bearer", {"resource_metadata": PRM})],
            id="case-and-spaces-around-equals",
        ),
        pytest.param(
            ['Bearer realm="first", realm="second"'],
            [Challenge("bearer", {"realm": "first"})],
            id="duplicate-param-first-wins",
        ),
        pytest.param(
            [', Bearer ,, realm="x" ,'],
            [Challenge("bearer", {"realm": "x"})],
            id="empty-list-elements",
        ),
        pytest.param(
            ["Bearer, Basic"],
            [Challenge("bearer", {}), Challenge("basic", {})],
            id="schemes-without-params",
        ),
        pytest.param(["Bearer realm="], [Challenge("bearer", {}, "realm=")], id="lone-token68"),
        pytest.param([""], [], id="empty"),
    ],
)
def test_parse_challenges(headers: list[str], expected: list[Challenge]) -> None:
    assert parse_challenges(headers) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param('Bearer realm="unterminated', id="unterminated-quote"),
        pytest.param('Bearer realm="x" scope="y"', id="missing-comma"),
        pytest.param('"Bearer" realm="x"', id="quoted-scheme"),
        pytest.param('Bearer a="x", realm=', id="missing-value"),
        pytest.param('Bearer a="x" realm', id="stray-token"),
    ],
)
def test_malformed_headers_raise(header: str) -> None:
    with pytest.raises(ChallengeSyntaxError):
        parse_challenges([header])


def test_bearer_param_ignores_other_schemes() -> None:
    challenges = parse_challenges(['Other resource_metadata="https://evil.test/x"', "Bearer"])
    assert bearer_param(challenges, "resource_metadata") is None


def test_bearer_param_takes_the_first_bearer_that_has_it() -> None:
    challenges = parse_challenges(['Bearer realm="r"', f'Bearer resource_metadata="{PRM}"'])
    assert bearer_param(challenges, "resource_metadata") == PRM
