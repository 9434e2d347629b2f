"""The signed `state`: round trip, every rejection reason, tampering, and a fuzzed parser."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpgw_core.api import StateRejection
from mcpgw_core.keyring import KeyRing
from mcpgw_core.state import (
    MAX_STATE_LENGTH,
    StateRejected,
    make_binding_value,
    sign_state,
    verify_state,
)

KEY_NEW = bytes(range(32))
KEY_OLD = bytes(range(100, 140))
GATEWAY = "team-a/github"
BINDING = "cookie-value-of-the-browser-that-started"
NOW = 1_700_000_000.0
TTL = 300.0
_B64 = string.ascii_letters + string.digits + "-_"


def make_ring(*keys: tuple[str, bytes]) -> KeyRing:
    return KeyRing(keys or (("k2", KEY_NEW), ("k1", KEY_OLD)))


def verify(ring: KeyRing, state: str, **overrides: object) -> object:
    kwargs: dict[str, object] = {"binding": BINDING, "now": NOW + 10, "max_age": TTL}
    kwargs.update(overrides)
    return ring.verify_state(state, **kwargs)  # type: ignore[arg-type]


def rejection(ring: KeyRing, state: object, **overrides: object) -> str:
    with pytest.raises(StateRejected) as info:
        verify(ring, state, **overrides)  # type: ignore[arg-type]
    return info.value.reason


@pytest.fixture
def ring() -> KeyRing:
    return make_ring()


@pytest.fixture
def state(ring: KeyRing) -> str:
    return ring.sign_state(gateway=GATEWAY, binding=BINDING, now=NOW).state


def test_round_trip_returns_signed_contents(ring: KeyRing) -> None:
    issued = ring.sign_state(gateway=GATEWAY, binding=BINDING, now=NOW)
    verified = ring.verify_state(
        issued.state, binding=BINDING, now=NOW + 299, max_age=TTL, expected_gateway=GATEWAY
    )
    assert (verified.gateway, verified.kid, verified.nonce, verified.issued_at) == (
        GATEWAY,
        "k2",
        issued.nonce,
        int(NOW),
    )
    assert issued.kid == "k2"
    assert issued.state.startswith("v1.k2.")
    assert issued.state.isascii()


def test_states_and_nonces_are_fresh(ring: KeyRing) -> None:
    issued = [ring.sign_state(gateway=GATEWAY, binding=BINDING, now=NOW) for _ in range(100)]
    assert len({i.nonce for i in issued}) == 100
    assert len({i.state for i in issued}) == 100


def test_longest_legal_gateway_fits_the_length_cap(ring: KeyRing) -> None:
    gateway = "n" * 63 + "/" + "a" * 253
    ring = make_ring(("k" * 32, KEY_NEW))
    issued = ring.sign_state(gateway=gateway, binding=BINDING, now=NOW)
    assert len(issued.state) <= MAX_STATE_LENGTH
    assert verify(ring, issued.state).gateway == gateway  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("gateway", "binding", "match"),
    [
        ("no-slash", BINDING, "namespace/name"),
        ("UPPER/case", BINDING, "namespace/name"),
        ("a/b/c", BINDING, "namespace/name"),
        (GATEWAY, "", "binding"),
    ],
    ids=["no-slash", "uppercase", "two-slashes", "empty-binding"],
)
def test_sign_refuses_bad_input(ring: KeyRing, gateway: str, binding: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ring.sign_state(gateway=gateway, binding=binding, now=NOW)


def test_binding_values_are_random_and_url_safe() -> None:
    values = {make_binding_value() for _ in range(50)}
    assert len(values) == 50
    assert all(len(v) >= 43 and set(v) <= set(_B64) for v in values)


# --- each rejection reason -------------------------------------------------------------------


def test_other_browser_is_binding_mismatch(ring: KeyRing, state: str) -> None:
    assert rejection(ring, state, binding=make_binding_value()) == StateRejection.BINDING_MISMATCH


@pytest.mark.parametrize("binding", [None, ""], ids=["no-cookie", "empty-cookie"])
def test_missing_cookie_is_binding_mismatch(ring: KeyRing, state: str, binding: object) -> None:
    assert rejection(ring, state, binding=binding) == StateRejection.BINDING_MISMATCH


def test_other_gateway_is_gateway_mismatch(ring: KeyRing, state: str) -> None:
    reason = rejection(ring, state, expected_gateway="team-a/gitlab")
    assert reason == StateRejection.GATEWAY_MISMATCH


def test_expired(ring: KeyRing, state: str) -> None:
    assert rejection(ring, state, now=NOW + TTL + 1) == StateRejection.EXPIRED
    assert verify(ring, state, now=NOW + TTL) is not None


def test_issued_far_in_the_future_is_refused(ring: KeyRing, state: str) -> None:
    assert rejection(ring, state, now=NOW - 3600) == StateRejection.EXPIRED
    assert verify(ring, state, now=NOW - 5) is not None


def test_unknown_kid_is_signature_invalid(state: str) -> None:
    other = make_ring(("k9", KEY_NEW))
    assert rejection(other, state) == StateRejection.SIGNATURE_INVALID


def test_same_kid_other_key_is_signature_invalid(state: str) -> None:
    impostor = make_ring(("k2", bytes(32)))
    assert rejection(impostor, state) == StateRejection.SIGNATURE_INVALID


def test_signature_is_checked_before_expiry_gateway_and_binding(ring: KeyRing) -> None:
    forged = make_ring(("k2", bytes(32))).sign_state(gateway=GATEWAY, binding="x", now=NOW).state
    reason = rejection(
        ring, forged, now=NOW + 10 * TTL, expected_gateway="team-b/other", binding="y"
    )
    assert reason == StateRejection.SIGNATURE_INVALID


def test_forged_binding_tag_is_signature_not_binding_failure(ring: KeyRing, state: str) -> None:
    # Swapping in the binding tag of another flow must not look like a mere wrong browser.
    other = ring.sign_state(gateway=GATEWAY, binding="attacker", now=NOW).state
    fields = state.split(".")
    fields[5] = other.split(".")[5]
    reason = rejection(ring, ".".join(fields), binding="attacker")
    assert reason == StateRejection.SIGNATURE_INVALID


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [
        lambda s: "",
        lambda s: "v2" + s[2:],
        lambda s: s + ".",
        lambda s: s.rsplit(".", 1)[0],
        lambda s: s + "=",
        lambda s: s.replace(".", ".=", 1),
        lambda s: s + "A" * MAX_STATE_LENGTH,
        lambda s: s[:-1] + "é",
        lambda s: s[:-1] + "\u0661",
        lambda s: s.replace("v1.", "v1.k/2.", 1),
        lambda s: s.replace("v1.k2.", "v1.k2.0", 1),
        lambda s: s.replace("v1.k2.", "v1.k2.-", 1),
    ],
    ids=[
        "empty",
        "unknown-version",
        "extra-field",
        "missing-field",
        "padding",
        "padding-in-field",
        "oversized",
        "non-ascii",
        "non-ascii-digit",
        "bad-kid",
        "leading-zero-iat",
        "negative-iat",
    ],
)
def test_malformed(ring: KeyRing, state: str, transform: object) -> None:
    assert rejection(ring, transform(state)) == StateRejection.MALFORMED  # type: ignore[operator]


@pytest.mark.parametrize("value", [None, b"v1.k2", 42], ids=["none", "bytes", "int"])
def test_non_string_is_malformed(ring: KeyRing, value: object) -> None:
    assert rejection(ring, value) == StateRejection.MALFORMED


def test_non_canonical_base64_is_malformed(ring: KeyRing, state: str) -> None:
    # The MAC (32 bytes) is 43 characters whose last one carries 2 unused bits: setting them
    # decodes to the same bytes, so only the canonical check can refuse it.
    fields = state.split(".")
    last = fields[6][-1]
    fields[6] = fields[6][:-1] + _B64[_B64.index(last) ^ 1]
    assert rejection(ring, ".".join(fields)) == StateRejection.MALFORMED


def test_every_truncation_is_refused(ring: KeyRing, state: str) -> None:
    for end in range(len(state)):
        assert rejection(ring, state[:end]) in {
            StateRejection.MALFORMED,
            StateRejection.SIGNATURE_INVALID,
        }, end


def test_tampering_any_character_is_refused(ring: KeyRing, state: str) -> None:
    forged_only = {StateRejection.MALFORMED, StateRejection.SIGNATURE_INVALID}
    for index, original in enumerate(state):
        for replacement in _B64 + ".=":
            if replacement == original:
                continue
            tampered = state[:index] + replacement + state[index + 1 :]
            assert rejection(ring, tampered) in forged_only, (index, replacement)


# --- fuzzing -----------------------------------------------------------------------------------

_FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_RING = make_ring()
_VALID = _RING.sign_state(gateway=GATEWAY, binding=BINDING, now=NOW).state


def _assert_refused(candidate: object) -> None:
    # pytest.raises also fails the test when nothing is raised: a forgery was accepted.
    with pytest.raises(StateRejected) as info:
        verify(_RING, candidate)  # type: ignore[arg-type]
    assert info.value.reason in {StateRejection.MALFORMED, StateRejection.SIGNATURE_INVALID}


@_FUZZ
@given(st.text(max_size=700))
def test_fuzz_arbitrary_text_is_refused(text: str) -> None:
    _assert_refused(text)


@_FUZZ
@given(st.binary(max_size=700))
def test_fuzz_arbitrary_bytes_is_refused(raw: bytes) -> None:
    _assert_refused(raw.decode("latin-1"))
    _assert_refused(raw.decode("utf-8", errors="surrogateescape"))


_B64_FIELD = st.text(alphabet=_B64, max_size=60)


@_FUZZ
@given(
    st.tuples(
        st.sampled_from(["k1", "k2", "k9"]),
        st.integers(min_value=1, max_value=2_000_000_000).map(str),
        _B64_FIELD,
        _B64_FIELD,
        _B64_FIELD,
        _B64_FIELD,
    )
)
def test_fuzz_well_shaped_forgeries_are_refused(fields: tuple[str, ...]) -> None:
    _assert_refused(".".join(("v1", *fields)))


@_FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(_VALID)),
            st.sampled_from(["insert", "delete", "replace"]),
            st.characters(codec="utf-8"),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_fuzz_mutations_of_a_valid_state_are_refused(edits: list[tuple[int, str, str]]) -> None:
    mutated = _VALID
    for index, kind, char in edits:
        index = min(index, len(mutated))
        if kind == "insert":
            mutated = mutated[:index] + char + mutated[index:]
        elif kind == "delete":
            mutated = mutated[:index] + mutated[index + 1 :]
        else:
            mutated = mutated[:index] + char + mutated[index + 1 :]
    if mutated != _VALID:
        _assert_refused(mutated)
    else:
        assert verify(_RING, mutated) is not None


def test_module_functions_accept_any_key_source() -> None:
    class OneKey:
        def signing_key(self) -> tuple[str, bytes]:
            return "solo", KEY_NEW

        def verification_key(self, kid: str) -> bytes | None:
            return KEY_NEW if kid == "solo" else None

    issued = sign_state(OneKey(), gateway=GATEWAY, binding=BINDING, now=NOW)
    assert verify_state(OneKey(), issued.state, binding=BINDING, now=NOW, max_age=TTL).kid == "solo"
