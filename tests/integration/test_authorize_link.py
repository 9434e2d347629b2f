"""Authorize links for Kubernetes users, for real: TokenReview and SubjectAccessReview by the
kube-apiserver, the callback replica under the chart's callback RBAC, links in the real Redis,
and the kubectl plugin as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcpgw_core.api import Reason
from mcpgw_core.keyring import encode_key, generate_key
from tests.support.callback_gateways import apply_crd, make_registered_gateway
from tests.support.callback_replicas import CallbackReplica, callback_kubeconfig, start_replica
from tests.support.control_plane import REPO, ControlPlane
from tests.support.kube_users import KubeUser, gateway_user
from tests.support.oidc_peer import OIDCPeer, complete_authorization
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer, start_redis

pytestmark = pytest.mark.integration

TIMEOUT = httpx.Timeout(15.0)
JSON_ACCEPT = {"accept": "application/json"}
PLUGIN = REPO / "hack" / "kubectl-mcpgw"


@dataclass
class LinkService:
    replica: CallbackReplica
    redis: RedisServer
    control_plane: ControlPlane
    peer: OIDCPeer
    workdir: Path

    @property
    def redirect_uri(self) -> str:
        return f"{self.replica.url}/oauth/callback"

    def link_url(self, namespace: str, name: str) -> str:
        return f"{self.replica.url}/oauth/links/{namespace}/{name}"


@pytest.fixture(scope="module")
def service(
    control_plane: ControlPlane, oidc_peer: OIDCPeer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LinkService]:
    workdir = tmp_path_factory.mktemp("links")
    apply_crd(control_plane)
    kubeconfig = callback_kubeconfig(control_plane, workdir / "callback.kubeconfig")
    key_dir = workdir / "keys"
    key_dir.mkdir()
    (key_dir / "k1").write_text(encode_key(generate_key()))
    redis = start_redis(workdir=workdir / "redis")
    port = free_port()
    try:
        replica = start_replica(
            workdir=workdir,
            redis_url=redis.url,
            key_dir=key_dir,
            public_url=f"http://127.0.0.1:{port}",
            kubeconfig=kubeconfig,
            replicas=1,
            port=port,
        )
    except BaseException:
        redis.stop()
        raise
    try:
        yield LinkService(replica, redis, control_plane, oidc_peer, workdir)
    finally:
        replica.stop()
        redis.stop()


def make_user(
    service: LinkService, namespace: str, name: str, *, verbs: list[str], gateways: list[str]
) -> KubeUser:
    return gateway_user(
        service.control_plane, service.workdir, namespace, name, verbs=verbs, gateways=gateways
    )


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        yield client


def reason_of(response: httpx.Response) -> str:
    return str(response.json()["reason"])


def mint(
    service: LinkService, http: httpx.Client, user: KubeUser, namespace: str, name: str
) -> str:
    response = http.post(service.link_url(namespace, name), headers=user.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["authorizeURL"])


def test_allowed_user_gets_a_link_that_works_once(
    service: LinkService, http: httpx.Client, namespace: str
) -> None:
    make_registered_gateway(
        service.control_plane, service.peer, namespace, "github", service.redirect_uri
    )
    editor = make_user(service, namespace, "editor", verbs=["get", "update"], gateways=["github"])
    response = http.post(service.link_url(namespace, "github"), headers=editor.auth)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["user"] == editor.username
    assert body["gateway"] == f"{namespace}/github"
    link = body["authorizeURL"]
    assert link.startswith(f"{service.replica.url}/oauth/authorize/{namespace}/github?link=")
    expires = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
    assert 100 < (expires - datetime.now(UTC)).total_seconds() <= 121
    # A browser (no header, no proxy) opens it: the flow starts for the reviewed user and
    # completes at the real authorization server.
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as browser:
        started = browser.get(link)
        assert started.status_code == 302, started.text
        callback = complete_authorization(started.headers["location"])
        done = browser.get(callback, headers=JSON_ACCEPT)
        assert done.status_code == 200, done.text
        assert done.json()["user"] == editor.username
        again = browser.get(link, headers=JSON_ACCEPT)
    assert again.status_code == 401
    assert reason_of(again) == Reason.LINK_REPLAYED
    secret = service.control_plane.kubectl_run(
        "get", "secret", "-n", namespace, done.json()["secret"], "-o", "json"
    )
    assert secret.returncode == 0, secret.stderr
    assert json.loads(secret.stdout)["metadata"]["annotations"]["mcpgw.dev/user"] == (
        editor.username
    )
    log = service.replica.process.tail(400)
    assert editor.token not in log
    assert parse_qs(urlsplit(link).query)["link"][0] not in log
    metrics = http.get(f"{service.replica.url}/metrics").text
    assert 'mcpgw_callback_authorize_rejections_total{reason="LinkReplayed"} 1.0' in metrics


def test_user_without_update_permission_gets_403(
    service: LinkService, http: httpx.Client, namespace: str
) -> None:
    make_registered_gateway(
        service.control_plane, service.peer, namespace, "github", service.redirect_uri
    )
    make_registered_gateway(
        service.control_plane, service.peer, namespace, "gitlab", service.redirect_uri
    )
    viewer = make_user(service, namespace, "viewer", verbs=["get", "list"], gateways=["github"])
    nobody = make_user(service, namespace, "nobody", verbs=[], gateways=[])
    other = make_user(service, namespace, "other", verbs=["update"], gateways=["gitlab"])
    for user in (viewer, nobody, other):
        response = http.post(service.link_url(namespace, "github"), headers=user.auth)
        assert response.status_code == 403, (user.name, response.text)
        assert reason_of(response) == Reason.FORBIDDEN
        assert f"not allowed to update mcpgateway {namespace}/github" in response.json()["message"]
    # RBAC said yes for gitlab: the same user gets that link.
    assert mint(service, http, other, namespace, "gitlab")


def test_invalid_or_missing_token_is_401(
    service: LinkService, http: httpx.Client, namespace: str
) -> None:
    make_registered_gateway(
        service.control_plane, service.peer, namespace, "github", service.redirect_uri
    )
    editor = make_user(service, namespace, "editor", verbs=["update"], gateways=["github"])
    url = service.link_url(namespace, "github")
    missing = http.post(url)
    assert missing.status_code == 401
    assert reason_of(missing) == Reason.UNAUTHENTICATED
    header, payload, signature = editor.token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    for token in ("not-a-kubernetes-token", forged):
        response = http.post(url, headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
        assert reason_of(response) == Reason.BEARER_TOKEN_REJECTED
        assert token not in response.text
        assert token not in service.replica.process.tail(400)
    # A token whose ServiceAccount is gone no longer authenticates anyone.
    deleted = service.control_plane.kubectl_run("delete", "sa", "editor", "-n", namespace)
    assert deleted.returncode == 0, deleted.stderr
    gone = http.post(url, headers=editor.auth)
    assert gone.status_code == 401
    assert reason_of(gone) == Reason.BEARER_TOKEN_REJECTED


def test_link_for_one_gateway_fails_on_another(
    service: LinkService, http: httpx.Client, namespace: str
) -> None:
    for name in ("github", "gitlab"):
        make_registered_gateway(
            service.control_plane, service.peer, namespace, name, service.redirect_uri
        )
    editor = make_user(
        service, namespace, "editor", verbs=["update"], gateways=["github", "gitlab"]
    )
    link = mint(service, http, editor, namespace, "github")
    token = parse_qs(urlsplit(link).query)["link"][0]
    on_other = http.get(
        f"{service.replica.url}/oauth/authorize/{namespace}/gitlab",
        params={"link": token},
        headers=JSON_ACCEPT,
    )
    assert on_other.status_code == 401
    assert reason_of(on_other) == Reason.LINK_GATEWAY_MISMATCH
    # Shown on the wrong gateway, the link is burned, not retried.
    burned = http.get(link, headers=JSON_ACCEPT)
    assert burned.status_code == 401
    assert reason_of(burned) == Reason.LINK_REPLAYED
    unknown = http.get(
        f"{service.replica.url}/oauth/authorize/{namespace}/github",
        params={"link": "A" * 43},
        headers=JSON_ACCEPT,
    )
    assert unknown.status_code == 401
    assert reason_of(unknown) == Reason.LINK_UNKNOWN


def run_plugin(
    user: KubeUser, tmp_path: Path, cp: ControlPlane, *args: str
) -> subprocess.CompletedProcess[str]:
    """`kubectl mcpgw ...` as a user runs it: plugin and kubectl found on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, target in (("kubectl-mcpgw", PLUGIN), ("kubectl", cp.kubectl)):
        if not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(target)
    # The plugin's shebang finds python3 on PATH; the venv's keeps the test hermetic.
    python_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}:{python_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECONFIG": str(user.kubeconfig),
    }
    return subprocess.run(
        [str(cp.kubectl), "mcpgw", "authorize-link", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, "LANG": os.environ.get("LANG", "C.UTF-8")},
    )


def test_kubectl_plugin_prints_a_working_link(
    service: LinkService, http: httpx.Client, namespace: str, tmp_path: Path
) -> None:
    cp = service.control_plane
    make_registered_gateway(cp, service.peer, namespace, "github", service.redirect_uri)
    # The plugin finds the callback from the gateway's status, as the operator reports it.
    status = {"status": {"authorization": {
        "authorizeURL": f"{service.replica.url}/oauth/authorize/{namespace}/github"}}}  # fmt: skip
    patched = cp.kubectl_run(
        "patch", "mcpgateway", "github", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    editor = make_user(service, namespace, "editor", verbs=["get", "update"], gateways=["github"])
    done = run_plugin(editor, tmp_path, cp, "github", "-n", namespace)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith(f"{service.replica.url}/oauth/authorize/{namespace}/github?link=")
    assert editor.username in done.stderr
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as browser:
        assert browser.get(link).status_code == 302
    viewer = make_user(service, namespace, "viewer", verbs=["get"], gateways=["github"])
    refused = run_plugin(viewer, tmp_path, cp, "github", "-n", namespace)
    assert refused.returncode == 1
    assert f"you are not allowed to update mcpgateway {namespace}/github" in refused.stderr
    assert refused.stdout == ""
    # --callback-url skips the status lookup (a user without `get` on the gateway).
    blind = make_user(service, namespace, "blind", verbs=["update"], gateways=["github"])
    explicit = run_plugin(
        blind, tmp_path, cp, "github", "-n", namespace, "--callback-url", service.replica.url
    )
    assert explicit.returncode == 0, explicit.stderr
    assert "?link=" in explicit.stdout
