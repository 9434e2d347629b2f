"""Redis behind TLS with a private CA, and behind a password with a database number."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpgw_core.state_store import FlowRecord, StateStore, StateStoreUnavailable
from tests.support.pki import make_pki
from tests.support.processes import free_port, port_open

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """redis-server on a TLS-only loopback port with a certificate from a throw-away CA."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed; run `make deps`"
    pki = make_pki(tmp_path / "pki")  # its serving certificate names 127.0.0.1
    port = free_port()
    proc = subprocess.Popen(  # our own redis-server, our arguments
        [
            binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(pki.serving_cert), "--tls-key-file", str(pki.serving_key),
            "--tls-ca-cert-file", str(pki.ca_cert), "--tls-auth-clients", "no",
            "--save", "", "--appendonly", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert proc.poll() is None, "redis-server exited (built without TLS?)"
            assert time.monotonic() < deadline, "TLS redis-server did not listen in 10 s"
            time.sleep(0.1)
        yield f"rediss://127.0.0.1:{port}/0", pki.ca_cert
    finally:
        proc.terminate()
        proc.wait(10)


def _record(nonce: str) -> FlowRecord:
    return FlowRecord(
        nonce=nonce,
        gateway="team-a/files",
        user="alice",
        code_verifier="v" * 64,
        redirect_uri="https://callback.example/oauth/callback",
        client_id="client-1",
        created_at=time.time(),
    )


async def test_the_configured_ca_verifies_a_tls_redis(tls_redis: tuple[str, Path]) -> None:
    url, ca = tls_redis
    store = StateStore.from_url(url, timeout=2.0, ca_file=str(ca))
    try:
        await store.create(_record("n" * 22), ttl=60)
        taken = await store.consume("n" * 22)
        assert taken.user == "alice"
    finally:
        await store.aclose()


async def test_without_the_ca_the_tls_redis_is_refused(tls_redis: tuple[str, Path]) -> None:
    url, _ = tls_redis
    store = StateStore.from_url(url, timeout=2.0)
    try:
        with pytest.raises(StateStoreUnavailable):
            await store.create(_record("m" * 22), ttl=60)
    finally:
        await store.aclose()


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed; run `make deps`"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret-pw",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert time.monotonic() < deadline, "redis-server did not listen in 10 s"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def test_password_and_database_from_the_url(password_redis: int) -> None:
    store = StateStore.from_url(f"redis://:s3cret-pw@127.0.0.1:{password_redis}/3", timeout=2.0)
    try:
        await store.create(_record("p" * 22), ttl=60)
        assert await store.link.command("CLIENT", "INFO") is not None
        info = await store.link.command("CLIENT", "INFO")
        assert b"db=3" in info
        assert (await store.consume("p" * 22)).user == "alice"
    finally:
        await store.aclose()


async def test_a_wrong_password_fails_closed(password_redis: int) -> None:
    store = StateStore.from_url(f"redis://:wrong@127.0.0.1:{password_redis}/0", timeout=2.0)
    try:
        with pytest.raises(StateStoreUnavailable) as caught:
            await store.create(_record("q" * 22), ttl=60)
        assert "wrong" not in str(caught.value)
    finally:
        await store.aclose()
