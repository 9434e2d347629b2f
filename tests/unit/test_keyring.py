"""The key ring: loading a mounted Secret, order, hot reload, rotation with flows in flight."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.keyring import (
    KeyRing,
    KeyRingError,
    decode_key,
    encode_key,
    generate_key,
    new_key_id,
)
from mcpgw_core.state import StateRejected

GATEWAY = "ns/gw"
BINDING = "browser-cookie"
NOW = 1_700_000_000.0
TTL = 300.0


class ProjectedVolume:
    """Writes a directory the way kubelet mounts a Secret: `..data` swapped atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0

    def publish(self, files: dict[str, bytes]) -> None:
        self.generation += 1
        target = self.root / f"..2024_01_01_00_00_{self.generation:02d}.{os.getpid()}"
        target.mkdir(parents=True)
        for name, content in files.items():
            (target / name).write_bytes(content)
        temp = self.root / "..data_tmp"
        temp.symlink_to(target.name)
        os.replace(temp, self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        for stale in self.root.iterdir():
            if stale.is_symlink() and not stale.name.startswith(".") and stale.name not in files:
                stale.unlink()


def key_file(key: bytes) -> bytes:
    return encode_key(key).encode() + b"\n"


def sign(ring: KeyRing) -> str:
    return ring.sign_state(gateway=GATEWAY, binding=BINDING, now=NOW).state


def reason_of(ring: KeyRing, state: str) -> str | None:
    try:
        ring.verify_state(state, binding=BINDING, now=NOW + 1, max_age=TTL)
    except StateRejected as exc:
        return exc.reason
    return None


KEY_A, KEY_B, KEY_C = (bytes([n]) * 32 for n in (1, 2, 3))


def test_without_order_file_the_greatest_kid_signs(tmp_path: Path) -> None:
    for kid, key in (("k20240101000000", KEY_A), ("k20250101000000", KEY_B)):
        (tmp_path / kid).write_bytes(key_file(key))
    ring = KeyRing.from_directory(tmp_path)
    assert ring.kids == ("k20250101000000", "k20240101000000")
    assert ring.signing_key() == ("k20250101000000", KEY_B)


def test_order_file_decides_and_unlisted_keys_only_verify(tmp_path: Path) -> None:
    for kid, key in (("a", KEY_A), ("b", KEY_B), ("c", KEY_C)):
        (tmp_path / kid).write_bytes(key_file(key))
    (tmp_path / "order").write_text("b\na\n")
    ring = KeyRing.from_directory(tmp_path)
    assert ring.kids == ("b", "a", "c")
    assert ring.signing_key()[0] == "b"
    assert ring.verification_key("c") == KEY_C


def test_projected_volume_machinery_is_ignored(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path)
    volume.publish({"k1": key_file(KEY_A)})
    (tmp_path / ".hidden").write_bytes(b"not a key")
    ring = KeyRing.from_directory(tmp_path)
    assert ring.kids == ("k1",)
    assert ring.verification_key("k1") == KEY_A


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (base64.b64encode(KEY_A), KEY_A),
        (
            base64.urlsafe_b64encode(bytes(range(250, 256)) * 6).rstrip(b"="),
            bytes(range(250, 256)) * 6,
        ),
        (b"  " + base64.b64encode(KEY_A) + b"\r\n", KEY_A),
        (KEY_A, KEY_A),
        (bytes(range(200, 240)), bytes(range(200, 240))),
        (b"!" * 40, b"!" * 40),
    ],
    ids=["base64", "base64url-unpadded", "whitespace", "raw-control", "raw-binary", "raw-text"],
)
def test_key_encodings(content: bytes, expected: bytes) -> None:
    assert decode_key(content) == expected


def test_generated_keys() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == 32 and decode_key(encode_key(k).encode()) == k for k in keys)


def test_new_key_ids_sort_by_time() -> None:
    t0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = [new_key_id(t0 + timedelta(seconds=s)) for s in (0, 1, 3600, 86400 * 400)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4
    assert ids[0] == "k20250102030405"


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({}, "no key"),
        ({"k1": base64.b64encode(b"x" * 31)}, "shorter than 32"),
        ({"k1": b"tooshort"}, "shorter than 32"),
        ({"key.pem": key_file(KEY_A)}, "not a valid key id"),
        ({"k1": key_file(KEY_A), "order": b"k2"}, "order file"),
        ({"k1": key_file(KEY_A), "order": b""}, "order file"),
        ({"k1": key_file(KEY_A), "order": b"k1 k1"}, "order file"),
    ],
    ids=["empty", "short-base64", "short-raw", "bad-name", "order-absent", "order-empty", "dup"],
)
def test_unusable_directory_is_hmac_key_missing(
    tmp_path: Path, files: dict[str, bytes], match: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(KeyRingError, match=match) as info:
        KeyRing.from_directory(tmp_path)
    assert info.value.reason == Reason.HMAC_KEY_MISSING
    for content in files.values():
        if len(content) >= 8:
            assert content.decode(errors="replace") not in str(info.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError) as info:
        KeyRing.from_directory(tmp_path / "absent")
    assert info.value.reason == Reason.HMAC_KEY_MISSING


def test_empty_ring_in_memory() -> None:
    with pytest.raises(KeyRingError):
        KeyRing([])


def test_reload_only_when_changed(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path)
    volume.publish({"k1": key_file(KEY_A)})
    ring = KeyRing.from_directory(tmp_path)
    assert ring.reload_if_changed() is False
    volume.publish({"k1": key_file(KEY_A), "k2": key_file(KEY_B)})
    assert ring.reload_if_changed() is True
    assert ring.kids == ("k2", "k1")
    assert ring.reload_if_changed() is False


def test_reload_of_a_plain_directory_sees_rewritten_files(tmp_path: Path) -> None:
    (tmp_path / "k1").write_bytes(key_file(KEY_A))
    ring = KeyRing.from_directory(tmp_path)
    (tmp_path / "k1").write_bytes(key_file(KEY_B) + b"\n\n")
    assert ring.reload_if_changed() is True
    assert ring.verification_key("k1") == KEY_B


def test_broken_reload_keeps_last_good_keys_and_keeps_complaining(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path)
    volume.publish({"k1": key_file(KEY_A)})
    ring = KeyRing.from_directory(tmp_path)
    state = sign(ring)
    volume.publish({"k1": b"short"})
    for _ in range(2):
        with pytest.raises(KeyRingError):
            ring.reload_if_changed()
    assert reason_of(ring, state) is None
    volume.publish({"k1": key_file(KEY_A), "k2": key_file(KEY_B)})
    assert ring.reload_if_changed() is True
    assert ring.kids == ("k2", "k1")


def test_rotation_keeps_flows_in_flight(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path)
    volume.publish({"old": key_file(KEY_A), "order": b"old"})
    ring = KeyRing.from_directory(tmp_path)
    before = sign(ring)

    # Step 1: the new key is added but only verifies.
    volume.publish({"old": key_file(KEY_A), "new": key_file(KEY_B), "order": b"old"})
    assert ring.reload_if_changed()
    assert ring.signing_key()[0] == "old"

    # Step 2: the new key signs; the flow started before still verifies.
    volume.publish({"old": key_file(KEY_A), "new": key_file(KEY_B), "order": b"new old"})
    assert ring.reload_if_changed()
    after = sign(ring)
    assert after.split(".")[1] == "new"
    assert reason_of(ring, before) is None
    assert reason_of(ring, after) is None

    # Step 3: once the old key is dropped, its states no longer verify.
    volume.publish({"new": key_file(KEY_B), "order": b"new"})
    assert ring.reload_if_changed()
    assert reason_of(ring, before) == StateRejection.SIGNATURE_INVALID
    assert reason_of(ring, after) is None


def test_another_replica_with_the_same_secret_verifies(tmp_path: Path) -> None:
    volume = ProjectedVolume(tmp_path)
    volume.publish({"k1": key_file(KEY_A)})
    replica_1 = KeyRing.from_directory(tmp_path)
    replica_2 = KeyRing.from_directory(tmp_path)
    assert reason_of(replica_2, sign(replica_1)) is None


def test_repr_of_ring_does_not_show_keys(tmp_path: Path) -> None:
    ring = KeyRing([("k1", KEY_A)])
    assert KEY_A.hex() not in repr(ring)
    assert str(KEY_A) not in repr(ring)
