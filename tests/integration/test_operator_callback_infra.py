"""The operator runs the callback service: key Secret, Deployment, Service, and their health.

Against the real API server with the operator under the chart's RBAC. No kubelet runs here, so
the Deployment never has available replicas; a real callback process started from the key
Secret the operator made answers /readyz at the configured health URL instead.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CALLBACK
from tests.support import gateways as gw
from tests.support.audit import AuditLog
from tests.support.callback_replicas import CallbackReplica, start_replica
from tests.support.control_plane import ControlPlane
from tests.support.oidc_peer import OIDCPeer
from tests.support.operator_process import SYSTEM_NAMESPACE
from tests.support.processes import ManagedProcess, free_port
from tests.support.redis_server import RedisServer, start_redis
from tests.support.user_secrets import put_secret

pytestmark = pytest.mark.integration
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"
WAIT = 30.0


@pytest.fixture
def prefix(control_plane: ControlPlane) -> Iterator[str]:
    """A callback name of this test's own, so tests sharing mcpgw-system never meet."""
    name = f"cb-{uuid.uuid4().hex[:8]}"
    yield name
    control_plane.kubectl_run(
        "delete", "deployment,service,secret", "-n", SYSTEM_NAMESPACE,
        "-l", f"app.kubernetes.io/instance={name}", "--wait=false",
    )  # fmt: skip
    control_plane.kubectl_run(
        "delete", "secret", f"{name}-state-keys", "-n", SYSTEM_NAMESPACE, "--ignore-not-found"
    )


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(workdir=tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def replicas() -> Iterator[list[CallbackReplica]]:
    started: list[CallbackReplica] = []
    yield started
    for replica in started:
        replica.stop()


def operator_env(prefix: str, **settings: str) -> dict[str, str]:
    return {
        "MCPGW_CALLBACK_NAMESPACE": SYSTEM_NAMESPACE,
        "MCPGW_CALLBACK_NAME": prefix,
        "MCPGW_CALLBACK_INFRA_SECONDS": "1",
        "MCPGW_CALLBACK_HEALTH_TIMEOUT_SECONDS": "1",
        **{f"MCPGW_CALLBACK_{k.upper()}": v for k, v in settings.items()},
    }


def system_object(cp: ControlPlane, kind: str, name: str) -> dict[str, Any] | None:
    return gw.get(cp, kind, name, SYSTEM_NAMESPACE)


def wait_for_object(cp: ControlPlane, kind: str, name: str, *, not_uid: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}

    def present() -> bool:
        body = system_object(cp, kind, name)
        if body is None or body["metadata"]["uid"] == not_uid:
            return False
        found.update(body)
        return True

    gw.wait_until(present, WAIT, f"{kind} {SYSTEM_NAMESPACE}/{name}")
    return found


def materialize_keys(secret: dict[str, Any], directory: Path) -> list[str]:
    """Write the Secret's entries as files, as kubelet mounts them; returns the values."""
    directory.mkdir(parents=True, exist_ok=True)
    values = []
    for name, encoded in secret["data"].items():
        content = base64.b64decode(encoded)
        (directory / name).write_bytes(content)
        values.append(content.decode())
    return values


def dynamic_gateway(name: str, namespace: str, issuer: str) -> dict[str, Any]:
    return gw.make_gateway(
        name,
        namespace,
        UNUSED_MCP_URL,
        oauth={"issuer": issuer, "scopes": ["mcp:tools"], "registration": {"mode": "Dynamic"}},
    )


def test_operator_creates_the_callback_objects_and_keeps_the_key(
    control_plane: ControlPlane,
    prefix: str,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    settings = {"replicas": "3", "image": "mcpgw:it", "redis_url": "redis://redis.test:6379/0"}
    first = run_operator(**operator_env(prefix, **settings))
    secret = wait_for_object(control_plane, "secret", f"{prefix}-state-keys")
    deployment = wait_for_object(control_plane, "deployment", prefix)
    service = wait_for_object(control_plane, "service", prefix)

    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert spec["replicas"] == 3
    assert container["image"] == "mcpgw:it"
    assert container["command"] == ["mcpgw-callback"]
    assert env["MCPGW_CALLBACK_REPLICAS"] == "3"
    assert env["MCPGW_CALLBACK_REDIS_URL"] == "redis://redis.test:6379/0"
    assert env["MCPGW_CALLBACK_PUBLIC_URL"] == CALLBACK
    assert pod["serviceAccountName"] == "mcpgw-callback"
    volume = next(v for v in pod["volumes"] if v["name"] == "state-keys")
    assert volume["secret"]["secretName"] == f"{prefix}-state-keys"
    mount = next(v for v in container["volumeMounts"] if v["name"] == "state-keys")
    assert mount["readOnly"] is True
    assert mount["mountPath"] == env["MCPGW_CALLBACK_KEY_DIR"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]

    # Deleted by someone: the next pass recreates it.
    deleted = control_plane.kubectl_run("delete", "deployment", prefix, "-n", SYSTEM_NAMESPACE)
    assert deleted.returncode == 0, deleted.stderr
    wait_for_object(control_plane, "deployment", prefix, not_uid=deployment["metadata"]["uid"])

    # Idle: several passes, no writes at all in the callback namespace.
    assert control_plane.audit_log is not None
    audit = AuditLog(control_plane.audit_log)
    mark = audit.mark()
    time.sleep(4)
    requests = [
        r for r in audit.requests(since=mark, namespace=SYSTEM_NAMESPACE) if prefix in r.name
    ]
    assert [r for r in requests if r.is_write] == []
    assert len([r for r in requests if r.resource == "deployments"]) >= 2  # passes did run

    # A restarted operator keeps the existing key ring untouched.
    first.stop()
    second = run_operator(**operator_env(prefix, **settings))
    current = wait_for_object(control_plane, "deployment", prefix)
    deleted = control_plane.kubectl_run("delete", "deployment", prefix, "-n", SYSTEM_NAMESPACE)
    assert deleted.returncode == 0, deleted.stderr
    wait_for_object(control_plane, "deployment", prefix, not_uid=current["metadata"]["uid"])
    after = system_object(control_plane, "secret", f"{prefix}-state-keys")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]
    assert after["data"] == secret["data"]

    # The generated key is in no log line.
    key_texts = [base64.b64decode(v).decode() for v in secret["data"].values()]
    key_texts = [k for k in key_texts if len(k) >= 32]
    assert key_texts
    first_log = first.log_path.read_text(errors="replace")
    second_log = second.log_path.read_text(errors="replace")
    assert "created the HMAC key-ring Secret" in first_log
    assert "created the HMAC key-ring Secret" not in second_log
    for text in (first_log, second_log):
        assert not [k for k in key_texts if k in text]


def test_gateway_reports_a_ready_callback_and_state_store(
    control_plane: ControlPlane,
    namespace: str,
    prefix: str,
    oidc_peer: OIDCPeer,
    redis: RedisServer,
    replicas: list[CallbackReplica],
    run_operator: Callable[..., ManagedProcess],
    tmp_path: Path,
) -> None:
    port = free_port()
    run_operator(
        **operator_env(
            prefix, replicas="2", redis_url=redis.url, health_url=f"http://127.0.0.1:{port}"
        )
    )
    secret = wait_for_object(control_plane, "secret", f"{prefix}-state-keys")
    materialize_keys(secret, tmp_path / "keys")
    replicas.append(
        start_replica(
            workdir=tmp_path,
            redis_url=redis.url,
            key_dir=tmp_path / "keys",
            public_url=CALLBACK,
            kubeconfig=control_plane.admin_kubeconfig,
            replicas=2,
            port=port,
        )
    )
    gw.apply(control_plane, dynamic_gateway("files", namespace, oidc_peer.issuer))
    body = gw.wait_for_condition(control_plane, "files", namespace, "CallbackReady", "True")
    body = gw.wait_for_condition(control_plane, "files", namespace, "StateStoreReady", "True")
    callback = gw.condition(body, "CallbackReady") or {}
    assert "decided by /readyz" in callback["message"]
    assert f"Deployment {SYSTEM_NAMESPACE}/{prefix} has 0/2" in callback["message"]

    redis.stop()
    body = gw.wait_for_condition(
        control_plane, "files", namespace, "StateStoreReady", "False",
        reason="StateStoreUnreachable", timeout=WAIT,
    )  # fmt: skip
    callback = gw.condition(body, "CallbackReady") or {}
    assert callback["status"] == "False"
    assert callback["reason"] == "StateStoreUnreachable"
    gw.wait_for_condition(
        control_plane, "files", namespace, "Ready", "False", reason="StateStoreUnreachable"
    )

    redis.start()
    gw.wait_for_condition(control_plane, "files", namespace, "StateStoreReady", "True")
    gw.wait_for_condition(control_plane, "files", namespace, "CallbackReady", "True")


def test_replicas_without_redis_are_not_shared(
    control_plane: ControlPlane,
    namespace: str,
    prefix: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    run_operator(**operator_env(prefix, replicas="2", health_url=nothing))
    gw.apply(control_plane, dynamic_gateway("files", namespace, oidc_peer.issuer))
    body = gw.wait_for_condition(
        control_plane, "files", namespace, "StateStoreReady", "False", reason="StateStoreNotShared"
    )
    store = gw.condition(body, "StateStoreReady") or {}
    assert "2 callback replicas need one shared Redis" in store["message"]
    callback = gw.condition(body, "CallbackReady") or {}
    assert callback["status"] == "False"
    assert callback["reason"] == "CallbackServiceUnavailable"
    assert f"{nothing}/readyz did not answer (connection refused)" in callback["message"]
    env = {
        e["name"]: e.get("value")
        for e in wait_for_object(control_plane, "deployment", prefix)["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert "MCPGW_CALLBACK_REDIS_URL" not in env


def test_unusable_key_secret_is_reported_and_left_alone(
    control_plane: ControlPlane,
    namespace: str,
    prefix: str,
    oidc_peer: OIDCPeer,
    redis: RedisServer,
    replicas: list[CallbackReplica],
    run_operator: Callable[..., ManagedProcess],
    tmp_path: Path,
) -> None:
    put_secret(control_plane, SYSTEM_NAMESPACE, f"{prefix}-state-keys", {"k1": "too-short"})
    before = system_object(control_plane, "secret", f"{prefix}-state-keys")
    assert before is not None
    port = free_port()
    run_operator(
        **operator_env(
            prefix, replicas="1", redis_url=redis.url, health_url=f"http://127.0.0.1:{port}"
        )
    )
    gw.apply(control_plane, dynamic_gateway("files", namespace, oidc_peer.issuer))
    body = gw.wait_for_condition(
        control_plane, "files", namespace, "CallbackReady", "False", reason="HMACKeyMissing"
    )
    message = (gw.condition(body, "CallbackReady") or {})["message"]
    assert f"{SYSTEM_NAMESPACE}/{prefix}-state-keys: key k1:" in message
    assert "shorter than 32 bytes" in message
    after = system_object(control_plane, "secret", f"{prefix}-state-keys")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # Fixed by a person: the health change reaches the gateway without touching it.
    good = base64.b64encode(bytes(range(32))).decode()
    put_secret(control_plane, SYSTEM_NAMESPACE, f"{prefix}-state-keys", {"k1": good})
    fixed = system_object(control_plane, "secret", f"{prefix}-state-keys")
    assert fixed is not None
    materialize_keys(fixed, tmp_path / "keys")
    replicas.append(
        start_replica(
            workdir=tmp_path,
            redis_url=redis.url,
            key_dir=tmp_path / "keys",
            public_url=CALLBACK,
            kubeconfig=control_plane.admin_kubeconfig,
            replicas=1,
            port=port,
        )
    )
    body = gw.wait_for_condition(control_plane, "files", namespace, "CallbackReady", "True")
    assert json.dumps(body).count(good) == 0
