"""A throwaway redis-server on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import ManagedProcess, SetupError, free_port

READY_TIMEOUT_SECONDS = 10.0


def _redis_binary() -> str:
    path = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not path:
        raise SetupError(
            "redis-server not found; install it (apt-get install -y redis-server) "
            "or point REDIS_SERVER at the binary"
        )
    return path


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """One redis-server process without persistence; `restart()` reuses the same port."""

    port: int
    workdir: Path
    _process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._process is not None, "redis-server was never started"
        return self._process.pid

    def start(self) -> RedisServer:
        argv = [
            _redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--protected-mode",
            "yes",
        ]
        self._process = ManagedProcess(
            name=f"redis-server:{self.port}", argv=argv, log_path=self.workdir / "redis.log"
        ).start()
        self._process.wait_ready(lambda: _answers_ping(self.port), READY_TIMEOUT_SECONDS)
        return self

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after a bounded wait)."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """Kill the server abruptly, as a crash or OOM kill would."""
        process = self._process
        if process is not None and process.popen is not None and process.alive():
            process.popen.kill()
            process.popen.wait(READY_TIMEOUT_SECONDS)

    def restart(self) -> RedisServer:
        """Stop and start again on the same port, with an empty dataset."""
        self.stop()
        return self.start()


def start_redis(port: int | None = None, workdir: Path | None = None) -> RedisServer:
    """Start a redis-server on `port` (a free one when None) and wait until it answers PING."""
    directory = workdir or Path(tempfile.mkdtemp(prefix="mcpgw-redis-"))
    directory.mkdir(parents=True, exist_ok=True)
    return RedisServer(port=port or free_port(), workdir=directory).start()
