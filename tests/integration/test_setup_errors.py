"""Bad set-up input stops with a message saying what to do, never a stack trace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.control_plane import REPO

pytestmark = pytest.mark.integration
ASSETS = ["bash", str(REPO / "hack" / "control-plane-assets.sh")]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_dev_up_refuses_a_port_in_use_before_starting_anything(
    busy_port: int, tmp_path: Path
) -> None:
    env = {**os.environ, "MCPGW_DEV_DIR": str(tmp_path), "MCPGW_DEV_REDIS_PORT": str(busy_port)}
    result = _run([sys.executable, str(REPO / "hack" / "dev.py"), "up"], env)
    assert result.returncode == 1
    assert f"port {busy_port} for the dev redis is already in use" in result.stderr
    assert "MCPGW_DEV_REDIS_PORT" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "pids.json").exists()


def test_dev_up_rejects_a_port_that_is_not_a_number(tmp_path: Path) -> None:
    env = {**os.environ, "MCPGW_DEV_DIR": str(tmp_path), "MCPGW_DEV_OIDC_PORT": "nineteen"}
    result = _run([sys.executable, str(REPO / "hack" / "dev.py"), "up"], env)
    assert result.returncode == 1
    assert "MCPGW_DEV_OIDC_PORT='nineteen' is not a port number" in result.stderr
    assert "Traceback" not in result.stderr


def test_assets_name_a_missing_tool(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MCPGW_CACHE": str(tmp_path)}
    if Path("/usr/bin/go").exists():
        pytest.fail("this test needs a PATH without go; /usr/bin/go exists on this machine")
    result = _run(ASSETS, env)
    assert result.returncode == 1
    assert "'go' is not installed" in result.stderr
    assert "KUBEBUILDER_ASSETS" in result.stderr


def test_assets_check_an_envtest_folder(tmp_path: Path) -> None:
    (tmp_path / "kube-apiserver").write_text("")
    env = {**os.environ, "KUBEBUILDER_ASSETS": str(tmp_path)}
    result = _run(ASSETS, env)
    assert result.returncode == 1
    assert f"KUBEBUILDER_ASSETS={tmp_path} has no executable 'kube-apiserver'" in result.stderr


def test_a_failed_build_says_what_failed(tmp_path: Path) -> None:
    env = {**os.environ, "MCPGW_CACHE": str(tmp_path), "K8S_VERSION": "v1.36.999"}
    env.pop("KUBEBUILDER_ASSETS", None)
    result = _run(ASSETS, env)
    assert result.returncode == 1
    assert "k8s.io/kubernetes@v1.36.999" in result.stderr
    assert "Traceback" not in result.stderr
