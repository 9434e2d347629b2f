"""PKCE: RFC 7636 appendix B vector, verifier alphabet and length, S256 only."""

from __future__ import annotations

import base64
import hashlib
import string

import pytest

from mcpgw_core.pkce import (
    UNRESERVED,
    is_valid_verifier,
    make_code_verifier,
    make_pkce_pair,
    s256_challenge,
)

RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_appendix_b_vector() -> None:
    assert s256_challenge(RFC7636_VERIFIER) == RFC7636_CHALLENGE


def test_pair_challenge_matches_verifier() -> None:
    verifier, challenge = make_pkce_pair()
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()
    assert "=" not in challenge
    assert len(challenge) == 43


@pytest.mark.parametrize("length", [43, 64, 128], ids=["min", "default", "max"])
def test_verifier_length_and_alphabet(length: int) -> None:
    verifier = make_code_verifier(length)
    assert len(verifier) == length
    assert set(verifier) <= set(UNRESERVED)
    assert is_valid_verifier(verifier)


@pytest.mark.parametrize("length", [0, 42, 129], ids=["zero", "too-short", "too-long"])
def test_verifier_length_out_of_range_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match=r"43\.\.128"):
        make_code_verifier(length)


def test_verifiers_are_fresh() -> None:
    assert len({make_code_verifier() for _ in range(200)}) == 200


def test_verifier_characters_are_spread_over_base64url() -> None:
    # 20,480 draws from 64 symbols: about 320 each; a stuck or biased generator falls far outside.
    text = "".join(make_code_verifier(128) for _ in range(160))
    counts = {symbol: text.count(symbol) for symbol in set(text)}
    assert set(counts) == set(string.ascii_letters + string.digits + "-_")
    assert 200 < min(counts.values()) <= max(counts.values()) < 450


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + " ", "a" * 42 + "é"],
    ids=["short", "long", "plus", "space", "non-ascii"],
)
def test_challenge_refuses_invalid_verifier_without_echoing_it(verifier: str) -> None:
    assert not is_valid_verifier(verifier)
    with pytest.raises(ValueError, match="RFC 7636") as info:
        s256_challenge(verifier)
    assert verifier not in str(info.value)
