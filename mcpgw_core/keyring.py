"""The HMAC key ring for `state`: keys read from a mounted Secret, their order, hot reload.

Layout: the key-ring Secret is mounted as a whole volume (not with `subPath`, whose files never
update). Each data key is one HMAC key: the file name is the key id (`[A-Za-z0-9_-]{1,32}`), the
content is the key, as base64 (standard or URL-safe, padding optional, surrounding whitespace
ignored) when the whole content is base64, else as raw bytes; at least 32 bytes after decoding.
Names starting with a dot are the projected volume's own machinery (`..data`, `..2024_...`) and
are skipped; the visible entries are symlinks through `..data`, which kubelet swaps atomically.

Order (the first key signs, every key verifies):
- With a file named `order` (so `order` is never a key id): its whitespace-separated key ids,
  first one signing; each must have a key file. Key files it does not list still verify.
- Without it: key ids sorted descending, so with ids from `new_key_id` the newest key signs.

Rotation without breaking flows in flight (the state TTL defaults to 300 s):
1. Add the new key to the Secret without listing it first in `order`; it only verifies. Wait
   until every replica's mount has it (kubelet sync period plus its cache TTL, about 1-2 min).
2. Put the new key id first in `order`. New states are signed with it; states signed with the
   old key keep verifying.
3. After at least the state TTL (plus the propagation time of step 1), remove the old key from
   `order` and from the Secret; its states are expired by then anyway.
Without an `order` file, adding a key whose id sorts first makes it sign at once on the replicas
that see it, and replicas that do not yet reject those states as `StateSignatureInvalid` until
their mount refreshes; use `order` for a clean rotation.

Reload: `reload_if_changed()` stats the directory (a few syscalls) and re-reads only when a file
or the `..data` link changed. A reload that finds no usable key raises `KeyRingError` and keeps
the last good keys, since flows in flight should not die from a half-written development
directory; the error is raised again on every call until the directory is fixed.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from mcpgw_core.api import Reason
from mcpgw_core.errors import OAuthError
from mcpgw_core.state import KID_RE, IssuedState, VerifiedState, sign_state, verify_state

MIN_KEY_BYTES: Final = 32
GENERATED_KEY_BYTES: Final = 32
ORDER_FILE: Final = "order"
_MAX_KEY_FILE_BYTES: Final = 4096
_B64_TEXT_RE: Final = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_READ_ATTEMPTS: Final = 3

_Fingerprint = tuple[str | None, tuple[tuple[str, int, int, int], ...]]


class KeyRingError(OAuthError):
    """The key ring has no usable key, or its directory holds something that is not a key."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.HMAC_KEY_MISSING, message, retryable=True)


def generate_key() -> bytes:
    """A fresh random HMAC key."""
    return secrets.token_bytes(GENERATED_KEY_BYTES)


def encode_key(key: bytes) -> str:
    """The text to store in the Secret for `key` (standard base64)."""
    return base64.b64encode(key).decode("ascii")


def new_key_id(now: datetime) -> str:
    """A key id that sorts after every id made earlier: `k` + UTC timestamp to the second."""
    return "k" + now.strftime("%Y%m%d%H%M%S")


def decode_key(content: bytes) -> bytes:
    """Interpret one key file's content (see the module docstring); raise `KeyRingError`."""
    text = content.strip()
    key = content
    if _B64_TEXT_RE.fullmatch(text) is not None:
        unpadded = text.rstrip(b"=").translate(bytes.maketrans(b"-_", b"+/"))
        try:
            key = base64.b64decode(unpadded + b"=" * (-len(unpadded) % 4), validate=True)
        except binascii.Error:
            key = content
    if len(key) < MIN_KEY_BYTES:
        raise KeyRingError(f"a key is shorter than {MIN_KEY_BYTES} bytes")
    return key


class KeyRing:
    """Ordered HMAC keys: the first signs states, all verify them."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], *, directory: Path | None = None) -> None:
        self._directory = directory
        self._fingerprint: _Fingerprint | None = None
        self._install(keys)

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Load the ring from a mounted Secret directory; `KeyRingError` when it has no key."""
        directory = Path(path)
        fingerprint, keys = _read_directory(directory)
        ring = cls(keys, directory=directory)
        ring._fingerprint = fingerprint
        return ring

    @property
    def kids(self) -> tuple[str, ...]:
        """Key ids in ring order; the first one signs."""
        return self._kids

    def signing_key(self) -> tuple[str, bytes]:
        kid = self._kids[0]
        return kid, self._keys[kid]

    def verification_key(self, kid: str) -> bytes | None:
        return self._keys.get(kid)

    def reload_if_changed(self) -> bool:
        """Re-read the directory if it changed; True when the keys were replaced."""
        if self._directory is None:
            return False
        if _fingerprint(self._directory) == self._fingerprint:
            return False
        fingerprint, keys = _read_directory(self._directory)
        self._install(keys)
        self._fingerprint = fingerprint
        return True

    def sign_state(self, *, gateway: str, binding: str, now: float) -> IssuedState:
        """Mint a state with the signing key (see `mcpgw_core.state.sign_state`)."""
        return sign_state(self, gateway=gateway, binding=binding, now=now)

    def verify_state(
        self,
        state: str,
        *,
        binding: str | None,
        now: float,
        max_age: float,
        expected_gateway: str | None = None,
    ) -> VerifiedState:
        """Verify a state against every key (see `mcpgw_core.state.verify_state`)."""
        return verify_state(
            self,
            state,
            binding=binding,
            now=now,
            max_age=max_age,
            expected_gateway=expected_gateway,
        )

    def _install(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyRingError("the key ring holds no key")
        mapping: dict[str, bytes] = {}
        for kid, key in keys:
            if KID_RE.fullmatch(kid) is None:
                raise KeyRingError(f"key id {kid!r} is not [A-Za-z0-9_-]{{1,32}}")
            if len(key) < MIN_KEY_BYTES:
                raise KeyRingError(f"key {kid} is shorter than {MIN_KEY_BYTES} bytes")
            if kid in mapping:
                raise KeyRingError(f"key id {kid} appears twice")
            mapping[kid] = key
        # Replace both at once so a concurrent reader never sees ids without keys.
        self._kids, self._keys = tuple(kid for kid, _ in keys), mapping


def _read_directory(directory: Path) -> tuple[_Fingerprint, list[tuple[str, bytes]]]:
    # A kubelet swap between reading two files would mix generations; re-read until stable.
    for _ in range(_READ_ATTEMPTS):
        before = _fingerprint(directory)
        keys = _read_keys(directory)
        if _fingerprint(directory) == before:
            return before, keys
    raise KeyRingError("the key directory kept changing while being read")


def _read_keys(directory: Path) -> list[tuple[str, bytes]]:
    files: dict[str, bytes] = {}
    order: list[str] | None = None
    for name in _visible_files(directory):
        try:
            with open(directory / name, "rb") as handle:
                content = handle.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise KeyRingError(f"cannot read key file {name}: {exc.strerror}") from exc
        if name == ORDER_FILE:
            order = content.decode("ascii", errors="replace").split()
            continue
        if KID_RE.fullmatch(name) is None:
            raise KeyRingError(f"file {name!r} in the key directory is not a valid key id")
        if len(content) > _MAX_KEY_FILE_BYTES:
            raise KeyRingError(f"key file {name} is larger than {_MAX_KEY_FILE_BYTES} bytes")
        try:
            files[name] = decode_key(content)
        except KeyRingError as exc:
            raise KeyRingError(f"key {name}: {exc.message}") from exc
    if not files:
        raise KeyRingError(f"no key in {directory}")
    if order is None:
        return [(kid, files[kid]) for kid in sorted(files, reverse=True)]
    missing = [kid for kid in order if kid not in files]
    if missing or len(set(order)) != len(order) or not order:
        raise KeyRingError("the order file is empty, repeats an id or names a key that is absent")
    verify_only = sorted(set(files) - set(order), reverse=True)
    return [(kid, files[kid]) for kid in [*order, *verify_only]]


def _visible_files(directory: Path) -> list[str]:
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        raise KeyRingError(f"cannot list the key directory {directory}: {exc.strerror}") from exc
    return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())


def _fingerprint(directory: Path) -> _Fingerprint:
    """What changes whenever kubelet or a person changes a key (inode, mtime, size per file)."""
    try:
        data_link: str | None = os.readlink(directory / "..data")
    except OSError:
        data_link = None
    stats: list[tuple[str, int, int, int]] = []
    try:
        for entry in os.scandir(directory):
            if entry.name.startswith("."):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            stats.append((entry.name, st.st_ino, st.st_mtime_ns, st.st_size))
    except OSError as exc:
        raise KeyRingError(f"cannot list the key directory {directory}: {exc.strerror}") from exc
    return data_link, tuple(sorted(stats))
