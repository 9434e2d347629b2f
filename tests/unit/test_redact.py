"""Redaction: secret fields, known values, credential shapes, control characters, length."""

from __future__ import annotations

import pytest

from mcpgw_core.redact import REDACTED, cap, redact_mapping, redact_text, strip_control

SECRET = "s3cr3t-value-XYZ"


def test_redact_mapping_replaces_secret_fields_at_any_depth() -> None:
    data = {
        "client_id": "abc",
        "client_secret": SECRET,
        "nested": {"registration_access_token": SECRET, "scope": "mcp"},
        "items": [{"Refresh_Token": SECRET}, "plain"],
    }

    result = redact_mapping(data)

    assert result == {
        "client_id": "abc",
        "client_secret": REDACTED,
        "nested": {"registration_access_token": REDACTED, "scope": "mcp"},
        "items": [{"Refresh_Token": REDACTED}, "plain"],
    }
    assert data["client_secret"] == SECRET, "the input must not be modified"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        pytest.param(
            f"bad token {SECRET} given", [SECRET], f"bad token {REDACTED} given", id="known-value"
        ),
        pytest.param(
            '{"client_secret": "abc\\"def"}',
            [],
            f'{{"client_secret": "{REDACTED}"}}',
            id="json-pair",
        ),
        pytest.param(
            "x?code=abc123&state=zz", [], f"x?code={REDACTED}&state={REDACTED}", id="form-pairs"
        ),
        pytest.param(
            "error_code=E42", [], "error_code=E42", id="field-suffix-is-not-a-secret-field"
        ),
        pytest.param(
            "Authorization: Bearer abc.def-ghi",
            [],
            f"Authorization: Bearer {REDACTED}",
            id="bearer",
        ),
        pytest.param(
            "sent eyJhbGciOi.eyJzdWIiOiJ4In0.sig_nat-ure", [], f"sent {REDACTED}", id="jwt"
        ),
        pytest.param("line1\nline2\r\x00end", [], "line1 line2 end", id="control-chars"),
        pytest.param("short abc", ["abc"], "short abc", id="too-short-to-substitute"),
        pytest.param("plain message", [None, ""], "plain message", id="empty-secrets-ignored"),
    ],
)
def test_redact_text(text: str, secrets: list[str | None], expected: str) -> None:
    assert redact_text(text, secrets=secrets) == expected


def test_redact_text_replaces_the_longest_secret_whole() -> None:
    inner, outer = "abcd1234", "abcd1234-and-more"
    assert redact_text(f"v={outer}", secrets=[inner, outer]) == f"v={REDACTED}"


def test_redact_text_caps_after_redacting_so_no_prefix_survives() -> None:
    text = "x" * 195 + SECRET
    result = redact_text(text, secrets=[SECRET], limit=200)
    assert len(result) <= 200
    assert SECRET[:5] not in result


def test_cap_and_strip_control() -> None:
    assert cap("abcdef", 5) == "ab..."
    assert cap("abc", 5) == "abc"
    assert strip_control("\u2028a\tb\x7f") == "a b"
