"""Runs the oidc-provider authorization-server peer (tests/peers/oidc) as a local subprocess."""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TypedDict, cast
from urllib.parse import quote

import httpx

from tests.support.oidc_login import AuthorizationFlowError, complete_authorization

__all__ = [
    "PEER_DIR",
    "AuthorizationFlowError",
    "DcrMode",
    "MetadataKind",
    "OIDCPeer",
    "OIDCPeerError",
    "PeerStats",
    "complete_authorization",
    "start_oidc_peer",
]

PEER_DIR = Path(__file__).resolve().parents[1] / "peers" / "oidc"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
ADMIN_TIMEOUT = httpx.Timeout(5.0)
# Variables that would make node or oidc-provider print request internals (tokens included).
_SCRUBBED_ENV = ("DEBUG", "NODE_DEBUG", "NODE_OPTIONS")

DcrMode = Literal["anonymous", "initial-access-token", "disabled"]
MetadataKind = Literal[
    "oauth-path-inserted", "openid-path-inserted", "openid-path-appended", "oauth-path-appended"
]


class OIDCPeerError(RuntimeError):
    """The peer could not start, or its admin API answered unexpectedly."""


class PeerStats(TypedDict):
    """What the peer counted since it started (see tests/peers/oidc/provider.mjs)."""

    registrations: dict[str, int]  # created, updated, deleted
    registration_errors: dict[str, int]  # "<event>:<oauth error>" -> count
    authorizations: int
    authorization_errors: dict[str, int]
    token_grants: dict[str, int]  # grant_type -> successful token responses
    token_errors: dict[str, dict[str, int]]  # grant_type -> oauth error -> count
    refresh_token_reuse: int
    grants_revoked: int


class OIDCPeer:
    """A running peer; stop it with `stop()` or use it as a context manager."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        issuer: str,
        log_path: Path,
        initial_access_token: str | None,
        stdout_reader: threading.Thread,
        *,
        owns_log: bool,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        base, _, path = self.issuer.partition("://")
        host, slash, rest = path.partition("/")
        self.base_url = f"{base}://{host}"
        self.issuer_path = f"{slash}{rest}"
        self.port = int(host.rsplit(":", 1)[1])
        self.initial_access_token = initial_access_token
        self.log_path = log_path
        self._process = process
        self._stdout_reader = stdout_reader
        self._owns_log = owns_log

    def __repr__(self) -> str:  # the initial access token stays out of test reports
        return f"OIDCPeer(issuer={self.issuer!r}, pid={self._process.pid})"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def oauth_metadata_url(self) -> str:
        """RFC 8414 metadata URL, path-inserted as sec. 3.1 requires."""
        return f"{self.base_url}/.well-known/oauth-authorization-server{self.issuer_path}"

    @property
    def openid_configuration_url(self) -> str:
        """OpenID Connect Discovery 1.0 URL: the well-known suffix appended to the issuer."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def _admin_get(self, path: str) -> httpx.Response:
        try:
            return httpx.get(f"{self.base_url}{path}", timeout=ADMIN_TIMEOUT, trust_env=False)
        except httpx.HTTPError as exc:
            raise OIDCPeerError(f"admin request {path} failed: {type(exc).__name__}") from exc

    def admin_client(self, client_id: str) -> dict[str, Any] | None:
        """The client's stored metadata (secret replaced by `client_secret_sha256`), or None."""
        response = self._admin_get(f"/__admin/clients/{quote(client_id, safe='')}")
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise OIDCPeerError(f"admin client lookup answered HTTP {response.status_code}")
        return cast(dict[str, Any], response.json())

    def stats(self) -> PeerStats:
        response = self._admin_get("/__admin/stats")
        if response.status_code != httpx.codes.OK:
            raise OIDCPeerError(f"admin stats answered HTTP {response.status_code}")
        return cast(PeerStats, response.json())

    def is_running(self) -> bool:
        return self._process.poll() is None

    def log_text(self) -> str:
        """The peer's stderr so far (request paths, library notices; never query strings)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after a bounded wait). Idempotent.

        A log file the peer made itself is removed; one passed as `log_path` is kept.
        """
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT_S)
        self._stdout_reader.join(timeout=STOP_TIMEOUT_S)
        if self._owns_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> OIDCPeer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _check_prerequisites() -> str:
    node = shutil.which("node")
    if node is None:
        raise OIDCPeerError("node is not on PATH: install Node.js 20 or later to run the oidc peer")
    if not (PEER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        raise OIDCPeerError(f"oidc-provider is not installed: run `npm ci` in {PEER_DIR}")
    return node


def _relay_stdout(stream: IO[str], log: IO[str], ready: queue.Queue[str | None]) -> None:
    """Hands the READY line to the starter and copies every other stdout line to the log."""
    try:
        for line in stream:
            if line.startswith("READY "):
                ready.put(line.strip())
            else:
                log.write(line)
                log.flush()
    finally:
        ready.put(None)
        log.close()


def _peer_env(settings: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED_ENV}
    env.pop("OIDC_PEER_INITIAL_ACCESS_TOKEN", None)
    env.update(settings)
    return env


def _log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start_oidc_peer(
    *,
    port: int | None = None,
    issuer_path: str = "/tenant-a",
    dcr: DcrMode = "anonymous",
    initial_access_token: str | None = None,
    rotate_refresh_tokens: bool = False,
    access_token_ttl: int = 3600,
    access_token_format: Literal["jwt", "opaque"] = "jwt",  # noqa: S107 (a format name, not a secret)
    metadata: Collection[MetadataKind] | None = None,
    resources: Collection[str] | None = None,
    rotate_registration_access_token: bool = True,
    log_path: Path | None = None,
    ready_timeout: float = READY_TIMEOUT_S,
) -> OIDCPeer:
    """Start the peer on 127.0.0.1 and wait (bounded) until it serves.

    `port=None` lets the peer bind a free port itself (no pick-then-bind race). With
    `dcr="initial-access-token"` and no token given, a random one is made; read it from
    `peer.initial_access_token`. `metadata=None` serves every discovery document; `resources=None`
    accepts any http(s) URL as an RFC 8707 resource indicator.
    """
    if issuer_path and (not issuer_path.startswith("/") or issuer_path.endswith("/")):
        raise ValueError("issuer_path must be empty or look like /tenant-a")
    node = _check_prerequisites()
    if dcr == "initial-access-token" and initial_access_token is None:
        initial_access_token = secrets.token_urlsafe(32)
    settings = {
        "PORT": str(port or 0),
        "OIDC_PEER_HOST": "127.0.0.1",
        "OIDC_PEER_ISSUER_PATH": issuer_path,
        "OIDC_PEER_DCR": dcr,
        "OIDC_PEER_ROTATE_REFRESH_TOKENS": str(rotate_refresh_tokens).lower(),
        "OIDC_PEER_ROTATE_REGISTRATION_ACCESS_TOKEN": str(rotate_registration_access_token).lower(),
        "OIDC_PEER_ACCESS_TOKEN_TTL": str(access_token_ttl),
        "OIDC_PEER_ACCESS_TOKEN_FORMAT": access_token_format,
        "OIDC_PEER_RESOURCES": ",".join(resources or ()),
    }
    if metadata is not None:
        settings["OIDC_PEER_METADATA"] = ",".join(metadata)
    if dcr == "initial-access-token" and initial_access_token is not None:
        settings["OIDC_PEER_INITIAL_ACCESS_TOKEN"] = initial_access_token

    owns_log = log_path is None
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="oidc-peer-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    log_path.write_text("")
    # Append mode on both handles: node's stderr and the stdout relay share the file.
    with log_path.open("a") as stderr_log:
        process = subprocess.Popen(
            [node, "server.mjs"],
            cwd=PEER_DIR,
            env=_peer_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_log,
            text=True,
        )
    assert process.stdout is not None
    ready: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(
        target=_relay_stdout,
        args=(process.stdout, log_path.open("a"), ready),
        name=f"oidc-peer-{process.pid}-stdout",
        daemon=True,
    )
    reader.start()
    try:
        peer_issuer = _wait_ready(process, ready, log_path, ready_timeout)
    except OIDCPeerError:
        reader.join(timeout=STOP_TIMEOUT_S)
        if owns_log:  # its tail is in the error message already
            log_path.unlink(missing_ok=True)
        raise
    return OIDCPeer(process, peer_issuer, log_path, initial_access_token, reader, owns_log=owns_log)


def _wait_ready(
    process: subprocess.Popen[str], ready: queue.Queue[str | None], log_path: Path, timeout: float
) -> str:
    try:
        line = ready.get(timeout=timeout)
    except queue.Empty:
        line = ""
    if line:
        return line.removeprefix("READY ")
    if line is None:
        process.wait(timeout=STOP_TIMEOUT_S)
        reason = f"exited with code {process.returncode} before it was ready"
    else:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
        reason = f"was not ready within {timeout:.0f}s"
    raise OIDCPeerError(f"oidc peer {reason}; end of its log:\n{_log_tail(log_path)}")
