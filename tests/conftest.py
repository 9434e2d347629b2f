"""Session fixtures for the real parts: control plane, namespaces, service accounts."""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.control_plane import ControlPlane, default_workdir, find_assets

_counter = itertools.count()


@pytest.fixture(scope="session")
def workdir() -> Path:
    path = default_workdir() / f"run-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def control_plane(workdir: Path) -> Iterator[ControlPlane]:
    cp = ControlPlane(workdir=workdir / "control-plane", assets=find_assets()).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (the namespace controller empties it)."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())
    name = f"t{next(_counter)}-{base}"[:50].rstrip("-") + "-" + uuid.uuid4().hex[:6]
    created = control_plane.kubectl_run("create", "namespace", name)
    assert created.returncode == 0, created.stderr
    yield name
    control_plane.kubectl_run("delete", "namespace", name, "--wait=false")
