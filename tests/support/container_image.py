"""Build and run the project's container image with the local Docker engine, for the tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tests.support.control_plane import REPO
from tests.support.processes import SetupError

BASE_IMAGE = "mcpgw-base:bookworm"
IMAGE = "mcpgw-operator:test"
#: The bundle hack/base-image.sh copies from this machine into the local base image.
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
#: pip settings worth handing to the build; a credential in an index URL stays out of logs.
_PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "default-timeout", "cert")


class EngineUnavailable(RuntimeError):
    """No Docker engine answers and hack/docker-engine.sh could not start one; says why."""


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def docker(*args: str, timeout: float = 60.0, check: bool = False) -> Run:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    run = Run(result.returncode, result.stdout, result.stderr)
    if check and run.returncode != 0:
        raise SetupError(f"docker {args[0]} failed ({run.returncode}): {run.stderr.strip()}")
    return run


def _script(name: str, timeout: float) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "hack" / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    # The scripts' progress lines go to stderr; show them in the test report.
    print(f"hack/{name} ({time.monotonic() - started:.0f} s):\n{result.stderr.rstrip()}")
    return result


def ensure_engine() -> None:
    """Start (or find) the engine; exit code 2 from the script means it cannot be had here."""
    result = _script("docker-engine.sh", timeout=300)
    if result.returncode == 2:
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        raise EngineUnavailable(lines[-1] if lines else "hack/docker-engine.sh exited 2")
    if result.returncode != 0:
        raise SetupError(f"hack/docker-engine.sh failed ({result.returncode}): {result.stderr}")


def ensure_base_image() -> None:
    result = _script("base-image.sh", timeout=900)
    if result.returncode != 0:
        raise SetupError(f"hack/base-image.sh failed ({result.returncode}): {result.stderr}")


def pip_build_args(config_listing: str) -> dict[str, str]:
    """PIP_* build args from `pip config list` output (files and PIP_* variables alike).

    A CA bundle is passed only when it is the system bundle, because that is the one file
    hack/base-image.sh copies into the local base image; other paths do not exist there.
    """
    found: dict[str, str] = {}
    for line in config_listing.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        option = key.rsplit(".", 1)[-1]
        if option in _PIP_KEYS:
            found[option] = raw.strip().strip("'\"")
    args = {f"PIP_{k.upper().replace('-', '_')}": v for k, v in found.items() if k != "cert"}
    if found.get("cert") == IMAGE_CA_BUNDLE:
        args["PIP_CERT"] = IMAGE_CA_BUNDLE
    return args


def host_pip_build_args() -> dict[str, str]:
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return pip_build_args(listing.stdout)


def build_image(tag: str = IMAGE, base: str = BASE_IMAGE) -> float:
    """`docker build` of the repository's Dockerfile on the local base; returns the seconds."""
    build_args = {"BASE_IMAGE": base, **host_pip_build_args()}
    argv: list[str] = ["build", "--network", "host", "-t", tag]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    print(f"docker build with build args: {', '.join(sorted(build_args))}")
    started = time.monotonic()
    result = docker(*argv, str(REPO), timeout=900)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        # Build output holds pip's lines, not the build args' values; its tail says what broke.
        tail = "\n".join(result.stdout.splitlines()[-40:])
        raise SetupError(f"docker build failed after {elapsed:.0f} s:\n{tail}\n{result.stderr}")
    return elapsed


def image_size(tag: str = IMAGE) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag, check=True).stdout)


def image_config(tag: str = IMAGE) -> dict[str, object]:
    config: dict[str, object] = json.loads(
        docker("image", "inspect", "--format", "{{json .Config}}", tag, check=True).stdout
    )
    return config


def run_image(*args: str, options: Sequence[str] = (), timeout: float = 60.0) -> Run:
    """`docker run --rm` of the image, network off unless the options say otherwise."""
    return docker("run", "--rm", "--network", "none", *options, IMAGE, *args, timeout=timeout)


def container_running(name: str) -> bool:
    state = docker("inspect", "--format", "{{.State.Running}}", name)
    return state.returncode == 0 and state.stdout.strip() == "true"


def container_logs(name: str, lines: int = 80) -> str:
    logs = docker("logs", "--tail", str(lines), name)
    return logs.stdout + logs.stderr


def engine_version() -> str:
    fmt = "client {{.Client.Version}}, server {{.Server.Version}}"
    return docker("version", "--format", fmt).stdout.strip()
