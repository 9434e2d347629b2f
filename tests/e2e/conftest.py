"""Selects the e2e cluster backend once per session (`--cluster`, MCPGW_E2E_CLUSTER) and hands
each scenario a fresh namespace in it. The option itself is registered in tests/conftest.py,
which pytest loads for every run, so `pytest --cluster=kind` works from the repository root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.backends import BackendChoiceError, Cluster, selected_backend
from tests.e2e.kind_cluster import kind_cluster
from tests.e2e.kind_probe import unavailable_here
from tests.e2e.local_cluster import local_cluster

SKIP_PREFIX = "kind backend unavailable: "


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    try:
        choice = selected_backend(request.config.getoption("cluster", default=None), os.environ)
    except BackendChoiceError as exc:
        raise pytest.UsageError(str(exc)) from None
    if choice == "kind":
        reason = unavailable_here()
        if reason is not None:
            pytest.skip(SKIP_PREFIX + reason)
        with kind_cluster(tmp_path_factory.mktemp("kind")) as kind:
            yield kind
        return
    # Only the local backend needs the tier-1 control plane: kind runs never start one.
    workdir: Path = request.getfixturevalue("workdir")
    with local_cluster(request.getfixturevalue("control_plane"), workdir / "e2e") as local:
        yield local


@pytest.fixture
def e2e_namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per scenario (named so the local operator watches it)."""
    name = cluster.create_namespace()
    yield name
    cluster.delete_namespace(name)
