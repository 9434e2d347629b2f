"""The container image: built from the Dockerfile here, non-root, read-only, runs the operator.

Nothing can be pulled on these machines, so the build uses the local Debian base image from
hack/base-image.sh; the engine comes from hack/docker-engine.sh. Both are cached, and Docker's
layer cache makes a warm build a matter of seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CALLBACK, REDIRECT_URI
from tests.support import container_image as ci
from tests.support import gateways as gw
from tests.support.control_plane import ControlPlane
from tests.support.oidc_peer import OIDCPeer
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

NON_ROOT = "65532"
# Bookworm minbase with Python and the venv is about 220 MB; a regression (build tools or
# caches shipped in the runtime stage) shows up as a jump well past this.
MAX_IMAGE_BYTES = 320 * 1024 * 1024
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"


@pytest.fixture(scope="module")
def image() -> str:
    try:
        ci.ensure_engine()
    except ci.EngineUnavailable as exc:
        pytest.skip(f"no Docker engine could be started here: {exc}")
    print(f"docker: {ci.engine_version()}")
    ci.ensure_base_image()
    elapsed = ci.build_image()
    print(f"docker build of {ci.IMAGE}: {elapsed:.1f} s")
    return ci.IMAGE


def test_runs_as_fixed_non_root_user(image: str) -> None:
    assert ci.image_config(image)["User"] == f"{NON_ROOT}:{NON_ROOT}"
    uid = ci.run_image("-u", options=["--entrypoint", "id"])
    gid = ci.run_image("-g", options=["--entrypoint", "id"])
    assert (uid.returncode, uid.stdout.strip()) == (0, NON_ROOT), uid.stderr
    assert (gid.returncode, gid.stdout.strip()) == (0, NON_ROOT), gid.stderr


def test_labels_and_entrypoint(image: str) -> None:
    config = ci.image_config(image)
    labels = config["Labels"]
    assert isinstance(labels, dict)
    assert labels["org.opencontainers.image.title"] == "mcpgw-operator"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.base.name"] == ci.BASE_IMAGE
    env = config["Env"]
    assert isinstance(env, list)
    assert "PYTHONDONTWRITEBYTECODE=1" in env


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        pytest.param("operator", "usage: mcpgw-operator", id="operator"),
        pytest.param("callback", "MCPGW_CALLBACK_REDIS_URL", id="callback"),
    ],
)
def test_component_help_on_read_only_root(image: str, component: str, expected: str) -> None:
    result = ci.run_image(component, "--help", options=["--read-only"])
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["bogus"],
            ["unknown component 'bogus'", "usage: <image> operator"],
            id="unknown-component",
        ),
        pytest.param([], ["no component given", "<image> callback [--help]"], id="empty-component"),
        pytest.param(["callback", "--port=1"], ["takes no arguments"], id="callback-argument"),
    ],
)
def test_bad_arguments_fail_with_usage(image: str, args: list[str], expected: list[str]) -> None:
    # An explicit empty first argument: without any, the image's CMD (--help) would apply.
    result = ci.run_image(*(args or [""]), options=["--read-only"])
    assert result.returncode == 64, (result.stdout, result.stderr)
    for text in expected:
        assert text in result.stderr


def test_image_size_is_reported_and_bounded(image: str) -> None:
    size = ci.image_size(image)
    print(f"image {image}: {size / 1024 / 1024:.1f} MiB")
    assert size < MAX_IMAGE_BYTES


@pytest.fixture
def image_kubeconfig(operator_kubeconfig: Path, tmp_path: Path) -> Path:
    """The operator's kubeconfig, readable by the image's user and nobody else."""
    path = tmp_path / "kubeconfig"
    shutil.copyfile(operator_kubeconfig, path)
    os.chown(path, int(NON_ROOT), int(NON_ROOT))
    path.chmod(0o400)
    return path


@pytest.fixture
def operator_container(image: str, image_kubeconfig: Path, namespace: str) -> Iterator[str]:
    """The image's operator on the host network, read-only root, watching this namespace."""
    name = f"mcpgw-op-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = ci.docker(
        "run",
        "--detach",
        "--name",
        name,
        "--read-only",
        # A KUBECONFIG's inline CA goes to a temp file (mcpgw_core.kube); in a cluster the
        # chart's emptyDir plays this part, and the rest of the root stays read-only.
        "--tmpfs",
        "/tmp:size=4m",
        "--network",
        "host",
        "--volume",
        f"{image_kubeconfig}:/etc/mcpgw/kubeconfig:ro",
        "--env",
        "KUBECONFIG=/etc/mcpgw/kubeconfig",
        "--env",
        f"MCPGW_NAMESPACES={json.dumps([namespace])}",
        "--env",
        f"MCPGW_CALLBACK_PUBLIC_URL={CALLBACK}",
        "--env",
        "MCPGW_TIMER_SECONDS=2",
        image,
        "operator",
        "--liveness",
        f"http://127.0.0.1:{port}/healthz",
    )
    assert started.returncode == 0, started.stderr
    try:
        _wait_healthy(name, port, timeout=60)
        yield name
    finally:
        print(f"--- container {name} ---\n{ci.container_logs(name)}")
        ci.docker("rm", "--force", name)


def _wait_healthy(name: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not ci.container_running(name):
            raise AssertionError(f"the operator container exited:\n{ci.container_logs(name)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the operator container was not healthy within {timeout} s")


def test_image_operator_registers_a_gateway(
    control_plane: ControlPlane, namespace: str, oidc_peer: OIDCPeer, operator_container: str
) -> None:
    gateway = gw.make_gateway(
        "from-image",
        namespace,
        UNUSED_MCP_URL,
        oauth={
            "issuer": oidc_peer.issuer,
            "scopes": ["mcp:tools"],
            "registration": {"mode": "Dynamic"},
        },
    )
    gw.apply(control_plane, gateway)
    body = gw.wait_for_condition(
        control_plane, "from-image", namespace, "Registered", "True", timeout=60
    )
    client_id = body["status"]["client"]["clientID"]
    registered = oidc_peer.admin_client(client_id)
    assert registered is not None
    assert registered["redirect_uris"] == [REDIRECT_URI]
    data = gw.secret_data(control_plane, "from-image-oauth-client", namespace)
    assert data is not None
    assert data["client_id"] == client_id
    assert ci.container_running(operator_container)
