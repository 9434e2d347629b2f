"""Whether the kind backend can run here, and if not, exactly what is missing.

The decision is a pure function of three injected probes (a `which`, `docker info`, and a pair
of container starts with and without `--privileged`), so a unit test can prove the reason is
precise for each missing piece; `unavailable_here()` wires them to this machine.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

#: Binaries the kind backend runs, each looked up on PATH.
REQUIRED_BINARIES: Final = ("kind", "docker", "kubectl", "helm")
PROBE_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class Probe:
    """The outcome of one probe: `ok`, or not and a one-line `detail` saying why."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class ContainerProbe:
    """Starting a throwaway container: without and with `--privileged`.

    `plain` None means there was no local image to try with, so nothing is known.
    """

    plain: Probe | None
    privileged: Probe | None


def kind_unavailable_reason(
    *,
    which: Callable[[str], str | None],
    docker_info: Callable[[], Probe],
    containers: Callable[[], ContainerProbe],
) -> str | None:
    """None when kind can run here; otherwise every missing piece, in the order to fix them."""
    problems = [f"`{name}` binary not on PATH" for name in REQUIRED_BINARIES if not which(name)]
    if which("docker"):
        info = docker_info()
        if not info.ok:
            problems.append(f"docker engine not reachable (`docker info`: {info.detail})")
        else:
            started = containers()
            if started.plain is not None and not started.plain.ok:
                problems.append(
                    f"the docker engine cannot start containers ({started.plain.detail})"
                )
            elif started.privileged is not None and not started.privileged.ok:
                problems.append(
                    "privileged containers refused by the docker engine "
                    f"({started.privileged.detail}); kind's node containers need --privileged"
                )
    return "; ".join(problems) or None


def _first_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line[:300]
    return lines[0][:300] if lines else "no output"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False
    )


def docker_info() -> Probe:
    try:
        done = _run("docker", "info", "--format", "{{.ServerVersion}}")
    except subprocess.TimeoutExpired:
        return Probe(False, f"no answer within {PROBE_TIMEOUT_SECONDS:.0f} s")
    if done.returncode != 0 or not done.stdout.strip():
        return Probe(False, _first_error_line(done.stderr or done.stdout))
    return Probe(True, done.stdout.strip())


def _local_image() -> str | None:
    listed = _run("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
    for line in listed.stdout.splitlines():
        if line.strip() and "<none>" not in line:
            return line.strip()
    return None


def _start(image: str, *extra: str) -> Probe:
    try:
        done = _run(
            "docker", "run", "--rm", "--network", "none", "--user", "0:0", *extra,
            "--entrypoint", "/bin/sh", image, "-c", "exit 0",
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Probe(False, f"no answer within {PROBE_TIMEOUT_SECONDS:.0f} s")
    return Probe(
        done.returncode == 0, "" if done.returncode == 0 else _first_error_line(done.stderr)
    )


def container_starts() -> ContainerProbe:
    """Start a container from any local image, then the same one privileged, both as root
    (kind's nodes run as root; a non-root process gets no capabilities, so it would pass).

    No image is pulled (kind will pull its node image itself); with no local image the probe
    says nothing and `kind create cluster` reports whatever is wrong.
    """
    image = _local_image()
    if image is None:
        return ContainerProbe(None, None)
    plain = _start(image)
    if not plain.ok:
        return ContainerProbe(plain, None)
    return ContainerProbe(plain, _start(image, "--privileged"))


def unavailable_here() -> str | None:
    """The reason for this machine, probing it for real."""
    return kind_unavailable_reason(
        which=shutil.which, docker_info=docker_info, containers=container_starts
    )
