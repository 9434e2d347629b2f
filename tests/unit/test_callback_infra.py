"""The operator's callback objects: pure builders, the health evaluation and the infra loop."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcpgw_core.api import ConditionStatus, Reason
from mcpgw_core.http import build_client
from mcpgw_core.keyring import KeyRing
from mcpgw_core.kube import KubeError
from mcpgw_operator import callback_manifests as m
from mcpgw_operator.callback_health import (
    CallbackObservation,
    ReadyzAnswer,
    evaluate_health,
    readyz_answer,
)
from mcpgw_operator.callback_infra import CallbackInfra, contains
from mcpgw_operator.scheduler import Scheduler
from mcpgw_operator.settings import OperatorSettings

JSON = dict[str, Any]
KEY = bytes(range(32))
REDIS_URL = "redis://redis.mcpgw-system.svc:6379/0"


def make_settings(**overrides: Any) -> OperatorSettings:
    values: dict[str, Any] = {
        "callback_namespace": "mcpgw-system",
        "callback_public_url": "https://callback.example.test/",
        "callback_image": "mcpgw:test",
        "callback_replicas": 2,
        "callback_redis_url": REDIS_URL,
        "callback_trusted_proxies": "10.0.0.0/8",
        **overrides,
    }
    return OperatorSettings(**values)


def container(deployment: JSON) -> JSON:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(deployment: JSON) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


def b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


# --- builders ------------------------------------------------------------------------------


def test_deployment_meets_the_restricted_pod_security_standard() -> None:
    deployment = m.desired_deployment(make_settings())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(deployment)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["runAsNonRoot"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in ctx
    assert "hostNetwork" not in pod
    # Only volume types the restricted profile allows.
    assert all(set(v) - {"name"} <= {"secret", "emptyDir"} for v in pod["volumes"])


def test_deployment_runs_the_callback_with_the_settings() -> None:
    settings = make_settings(
        callback_replicas=3,
        callback_resources={"requests": {"cpu": "100m"}, "limits": {"memory": "300Mi"}},
        callback_service_account="cb-sa",
        callback_state_ttl_seconds=600,
    )
    deployment = m.desired_deployment(settings)
    c = container(deployment)
    assert deployment["metadata"]["namespace"] == "mcpgw-system"
    assert deployment["spec"]["replicas"] == 3
    assert c["image"] == "mcpgw:test"
    assert c["command"] == ["mcpgw-callback"]
    assert c["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "300Mi"}}
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "cb-sa"
    env = env_of(deployment)
    assert env["MCPGW_CALLBACK_REPLICAS"] == "3"
    assert env["MCPGW_CALLBACK_HOST"] == "0.0.0.0"  # noqa: S104 - the pod's address
    assert env["MCPGW_CALLBACK_PORT"] == "8080"
    assert env["MCPGW_CALLBACK_PUBLIC_URL"] == "https://callback.example.test"
    assert env["MCPGW_CALLBACK_KEY_DIR"] == "/etc/mcpgw/state-keys"
    assert env["MCPGW_CALLBACK_STATE_TTL_SECONDS"] == "600"
    assert env["MCPGW_CALLBACK_TRUSTED_PROXIES"] == "10.0.0.0/8"
    assert env["MCPGW_CALLBACK_AUTH_MODE"] == "proxy-header"
    assert env["MCPGW_CALLBACK_REDIS_URL"] == REDIS_URL


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, REDIS_URL, id="plain-url"),
        pytest.param(
            {"callback_redis_url": "", "callback_redis_url_secret": "redis-auth"},
            {"secretKeyRef": {"name": "redis-auth", "key": "url"}},
            id="url-from-secret",
        ),
        pytest.param({"callback_redis_url": ""}, None, id="none-configured"),
    ],
)
def test_redis_url_reaches_the_pods(overrides: dict[str, Any], expected: object) -> None:
    env = env_of(m.desired_deployment(make_settings(**overrides)))
    assert env.get("MCPGW_CALLBACK_REDIS_URL") == expected


def test_key_secret_is_mounted_read_only_as_a_whole_directory() -> None:
    settings = make_settings(callback_key_dir="/keys", callback_name="cb")
    deployment = m.desired_deployment(settings)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {v["name"]: v for v in container(deployment)["volumeMounts"]}
    assert volumes[m.KEY_VOLUME]["secret"]["secretName"] == "cb-state-keys"
    assert mounts[m.KEY_VOLUME] == {"name": m.KEY_VOLUME, "mountPath": "/keys", "readOnly": True}


def _empty_strings(value: object, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empty_strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empty_strings(v, f"{path}[{i}]")]
    return [path] if value == "" else []


@pytest.mark.parametrize("build", [m.desired_deployment, m.desired_service], ids=["dep", "svc"])
def test_manifests_hold_no_empty_strings(build: Any) -> None:
    """The API server omits empty strings, so one in a manifest would read as drift forever."""
    assert _empty_strings(build(make_settings(callback_trusted_proxies=""))) == []


def test_probes_use_healthz_and_readyz_on_the_container_port() -> None:
    c = container(m.desired_deployment(make_settings(callback_port=9000)))
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["port"] == "http"
    assert c["livenessProbe"]["httpGet"]["port"] == "http"


def test_service_selects_the_deployments_pods() -> None:
    settings = make_settings()
    deployment, service = m.desired_deployment(settings), m.desired_service(settings)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["metadata"]["name"] == deployment["metadata"]["name"] == "mcpgw-callback"


def test_key_secret_is_only_built_when_absent() -> None:
    settings = make_settings()
    assert m.desired_key_secret(settings, {"metadata": {"name": "x"}}, ("k1", KEY)) is None
    secret = m.desired_key_secret(settings, None, ("k20250101000000", KEY))
    assert secret is not None
    assert secret["metadata"]["name"] == "mcpgw-callback-state-keys"
    assert m.key_ring_problem(secret) is None


def test_generated_key_secret_loads_as_the_callbacks_key_ring(tmp_path: Path) -> None:
    """Materialized as kubelet would, the Secret is a ring whose signing key is the new key."""
    secret = m.desired_key_secret(make_settings(), None, ("k20250101000000", KEY))
    assert secret is not None
    for name, value in secret["data"].items():
        (tmp_path / name).write_bytes(base64.b64decode(value))
    ring = KeyRing.from_directory(tmp_path)
    assert ring.signing_key() == ("k20250101000000", KEY)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(None, "does not exist", id="absent"),
        pytest.param({}, "holds no key", id="empty"),
        pytest.param({"k1": b64(b64(b"short"))}, "shorter than 32 bytes", id="short-key"),
        pytest.param({"bad.id": b64(b64(KEY))}, "not a valid key id", id="bad-key-id"),
        pytest.param({"k1": "%%%"}, "not valid base64", id="bad-base64"),
        pytest.param(
            {"k1": b64(b64(KEY)), "order": b64("k2 k1")}, "names a key that is absent", id="order"
        ),
        pytest.param({"k1": b64(b64(KEY)), "order": b64("k1")}, None, id="usable"),
        pytest.param({"k1": b64(KEY)}, None, id="raw-key-bytes"),
    ],
)
def test_key_ring_problem(data: dict[str, str] | None, problem: str | None) -> None:
    secret = None if data is None else {"data": data}
    found = m.key_ring_problem(secret)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


# --- health --------------------------------------------------------------------------------

READY = ReadyzAnswer(200)
UNREACHABLE = ReadyzAnswer(error="connection refused")
REDIS_DOWN = readyz_answer(
    503,
    {"problems": [{"reason": "StateStoreUnreachable", "message": "Redis is unreachable"}]},
)


def deployment_with(available: int, desired: int = 2) -> JSON:
    return {"spec": {"replicas": desired}, "status": {"availableReplicas": available}}


@pytest.mark.parametrize(
    ("settings", "seen", "callback", "store"),
    [
        pytest.param(
            {}, CallbackObservation(deployment=deployment_with(0), readyz=READY),
            (ConditionStatus.TRUE, Reason.CALLBACK_READY, "decided by /readyz"),
            (ConditionStatus.TRUE, Reason.STATE_STORE_READY, "decided by /readyz"),
            id="readyz-200",
        ),
        pytest.param(
            {}, CallbackObservation(deployment=deployment_with(2), readyz=UNREACHABLE),
            (ConditionStatus.TRUE, Reason.CALLBACK_READY, "decided by the Deployment"),
            (ConditionStatus.UNKNOWN, Reason.AWAITING_CALLBACK_SERVICE, "/readyz"),
            id="deployment-available",
        ),
        pytest.param(
            {}, CallbackObservation(deployment=deployment_with(0), readyz=UNREACHABLE),
            (ConditionStatus.FALSE, Reason.CALLBACK_SERVICE_UNAVAILABLE, "connection refused"),
            (ConditionStatus.UNKNOWN, Reason.AWAITING_CALLBACK_SERVICE, "/readyz"),
            id="nothing-answers",
        ),
        pytest.param(
            {}, CallbackObservation(deployment=None, readyz=UNREACHABLE),
            (ConditionStatus.FALSE, Reason.CALLBACK_SERVICE_UNAVAILABLE, "does not exist"),
            (ConditionStatus.UNKNOWN, Reason.AWAITING_CALLBACK_SERVICE, "/readyz"),
            id="no-deployment",
        ),
        pytest.param(
            {}, CallbackObservation(key_problem="the Secret holds no key", readyz=READY),
            (ConditionStatus.FALSE, Reason.HMAC_KEY_MISSING, "holds no key"),
            (ConditionStatus.TRUE, Reason.STATE_STORE_READY, "/readyz"),
            id="hmac-key-missing",
        ),
        pytest.param(
            {"callback_redis_url": ""}, CallbackObservation(readyz=READY),
            (ConditionStatus.TRUE, Reason.CALLBACK_READY, "/readyz"),
            (ConditionStatus.FALSE, Reason.STATE_STORE_NOT_SHARED, "2 callback replicas"),
            id="not-shared",
        ),
        pytest.param(
            {"callback_redis_url": "", "callback_replicas": 1}, CallbackObservation(readyz=READY),
            (ConditionStatus.TRUE, Reason.CALLBACK_READY, "/readyz"),
            (ConditionStatus.TRUE, Reason.STATE_STORE_READY, "/readyz"),
            id="one-replica-needs-no-sharing",
        ),
        pytest.param(
            {}, CallbackObservation(deployment=deployment_with(0), readyz=REDIS_DOWN),
            (ConditionStatus.FALSE, Reason.STATE_STORE_UNREACHABLE, "answered 503"),
            (ConditionStatus.FALSE, Reason.STATE_STORE_UNREACHABLE, "Redis is unreachable"),
            id="redis-down-per-readyz",
        ),
        pytest.param(
            {}, CallbackObservation(readyz=UNREACHABLE, redis_ping=False),
            (ConditionStatus.FALSE, Reason.CALLBACK_SERVICE_UNAVAILABLE, "did not answer"),
            (ConditionStatus.FALSE, Reason.STATE_STORE_UNREACHABLE, "operator's PING"),
            id="redis-down-per-ping",
        ),
        pytest.param(
            {}, CallbackObservation(readyz=UNREACHABLE, redis_ping=True),
            (ConditionStatus.FALSE, Reason.CALLBACK_SERVICE_UNAVAILABLE, "did not answer"),
            (ConditionStatus.TRUE, Reason.STATE_STORE_READY, "operator's PING"),
            id="redis-up-per-ping",
        ),
        pytest.param(
            {}, CallbackObservation(readyz=ReadyzAnswer(404)),
            (ConditionStatus.FALSE, Reason.CALLBACK_SERVICE_UNAVAILABLE, "answered 404"),
            (ConditionStatus.UNKNOWN, Reason.AWAITING_CALLBACK_SERVICE, "/readyz"),
            id="something-else-at-the-url",
        ),
        pytest.param(
            {}, CallbackObservation(api_error="Kubernetes API answered 403 Forbidden"),
            (ConditionStatus.UNKNOWN, Reason.AWAITING_CALLBACK_SERVICE, "403 Forbidden"),
            (ConditionStatus.UNKNOWN, Reason.AWAITING_CALLBACK_SERVICE, "403 Forbidden"),
            id="api-error",
        ),
    ],
)  # fmt: skip
def test_evaluate_health(
    settings: dict[str, Any],
    seen: CallbackObservation,
    callback: tuple[ConditionStatus, str, str],
    store: tuple[ConditionStatus, str, str],
) -> None:
    health = evaluate_health(make_settings(**settings), seen)
    for value, (status, reason, fragment) in (
        (health.callback_ready, callback),
        (health.state_store_ready, store),
    ):
        assert (value.status, value.reason) == (status, reason), value.message
        assert fragment in value.message


def test_health_messages_never_carry_the_redis_url() -> None:
    secret_url = "redis://:hunter2-password@redis:6379/0"
    for seen in (
        CallbackObservation(readyz=UNREACHABLE, redis_ping=False),
        CallbackObservation(readyz=REDIS_DOWN),
    ):
        health = evaluate_health(make_settings(callback_redis_url=secret_url), seen)
        assert "hunter2" not in health.callback_ready.message + health.state_store_ready.message


@pytest.mark.parametrize(
    "body",
    [None, [], {"problems": "x"}, {"problems": [1, {"message": "no reason"}]}],
    ids=["none", "list", "string-problems", "malformed-items"],
)
def test_readyz_answer_ignores_odd_bodies(body: object) -> None:
    assert readyz_answer(503, body) == ReadyzAnswer(503, ())


def test_readyz_answer_caps_and_cleans_messages() -> None:
    answer = readyz_answer(503, {"problems": [{"reason": "X", "message": "a\x00b" + "c" * 500}]})
    ((reason, message),) = answer.problems
    assert reason == "X"
    assert "\x00" not in message
    assert len(message) <= 200


# --- drift detection and the loop -----------------------------------------------------------


def test_contains_ignores_server_defaults_but_not_drift() -> None:
    desired = m.desired_deployment(make_settings())
    actual = copy.deepcopy(desired)
    actual["status"] = {"availableReplicas": 0}
    actual["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/x"
    assert contains(actual, desired)
    actual["spec"]["replicas"] = 5
    assert not contains(actual, desired)
    actual = copy.deepcopy(desired)
    actual["spec"]["template"]["spec"]["containers"][0]["env"].pop()
    assert not contains(actual, desired)


class FakeKube:
    """Objects by path; counts writes; optionally refuses everything like missing RBAC."""

    def __init__(self) -> None:
        self.objects: dict[str, JSON] = {}
        self.writes: list[tuple[str, str]] = []
        self.forbidden = False

    def _check(self) -> None:
        if self.forbidden:
            raise KubeError(403, "Forbidden", "no")

    async def get(self, path: str) -> JSON | None:
        self._check()
        found = self.objects.get(path)
        return copy.deepcopy(found) if found else None

    async def create(self, collection: str, body: JSON) -> JSON:
        self._check()
        path = f"{collection}/{body['metadata']['name']}"
        if path in self.objects:
            raise KubeError(409, "AlreadyExists", "exists")
        stored = copy.deepcopy(body)
        stored["status"] = {}  # the server adds fields; contains() must tolerate them
        self.objects[path] = stored
        self.writes.append(("create", path))
        return copy.deepcopy(stored)

    async def merge_patch(self, path: str, patch: JSON) -> JSON:
        self._check()
        self.objects[path] = _merge(self.objects[path], patch)
        self.writes.append(("patch", path))
        return copy.deepcopy(self.objects[path])


def _merge(target: JSON, patch: JSON) -> JSON:
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def readyz_transport(status: int, body: JSON) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(
            status, content=json.dumps(body), headers={"content-type": "application/json"}
        )
    )


async def test_loop_creates_once_then_stays_silent() -> None:
    kube = FakeKube()
    changes: list[int] = []
    settings = make_settings(callback_health_url="http://cb.test")
    http = build_client(transport=readyz_transport(200, {"status": "ready"}))
    infra = CallbackInfra(kube, http, settings, on_change=lambda: changes.append(1))  # type: ignore[arg-type]
    first = await infra.reconcile_once()
    assert first.callback_ready.status == ConditionStatus.TRUE
    assert sorted(verb for verb, _ in kube.writes) == ["create", "create", "create"]
    assert changes == [1]
    assert infra.health() == first
    secret_path = "/api/v1/namespaces/mcpgw-system/secrets/mcpgw-callback-state-keys"
    assert m.key_ring_problem(kube.objects[secret_path]) is None
    kube.writes.clear()
    for _ in range(3):
        assert await infra.reconcile_once() == first
    assert kube.writes == []
    assert changes == [1]
    await http.aclose()


async def test_loop_repairs_drift_and_never_rewrites_the_key_secret() -> None:
    kube = FakeKube()
    settings = make_settings(callback_health_url="http://cb.test")
    http = build_client(transport=readyz_transport(200, {"status": "ready"}))
    infra = CallbackInfra(kube, http, settings, on_change=lambda: None)  # type: ignore[arg-type]
    await infra.reconcile_once()
    secret_path = "/api/v1/namespaces/mcpgw-system/secrets/mcpgw-callback-state-keys"
    deployment_path = "/apis/apps/v1/namespaces/mcpgw-system/deployments/mcpgw-callback"
    kube.objects[secret_path]["data"] = {"k1": b64(b64(b"short"))}  # someone broke it
    kube.objects[deployment_path]["spec"]["replicas"] = 7
    kube.writes.clear()
    health = await infra.reconcile_once()
    assert kube.writes == [("patch", deployment_path)]
    assert kube.objects[deployment_path]["spec"]["replicas"] == 2
    assert health.callback_ready.reason == Reason.HMAC_KEY_MISSING
    del kube.objects[deployment_path]
    kube.writes.clear()
    await infra.reconcile_once()
    assert kube.writes == [("create", deployment_path)]
    await http.aclose()


async def test_loop_reports_api_errors_as_unknown() -> None:
    kube = FakeKube()
    kube.forbidden = True
    http = build_client(transport=readyz_transport(200, {}))
    infra = CallbackInfra(kube, http, make_settings(), on_change=lambda: None)  # type: ignore[arg-type]
    health = await infra.reconcile_once()
    assert health.callback_ready.status == ConditionStatus.UNKNOWN
    assert "403 Forbidden" in health.callback_ready.message
    await http.aclose()


async def test_unmanaged_mode_writes_nothing() -> None:
    kube = FakeKube()
    http = build_client(transport=readyz_transport(200, {}))
    settings = make_settings(callback_manage=False, callback_health_url="http://cb.test")
    infra = CallbackInfra(kube, http, settings, on_change=lambda: None)  # type: ignore[arg-type]
    health = await infra.reconcile_once()
    assert kube.writes == []
    assert health.callback_ready.reason == Reason.HMAC_KEY_MISSING  # nobody made the Secret
    await http.aclose()


def test_scheduler_marks_every_known_gateway_urgent() -> None:
    scheduler = Scheduler(tick_seconds=1, resync_seconds=300)
    scheduler.saw(("a", "one"), None)
    scheduler.saw(("b", "two"), None)
    scheduler.all_soon()
    assert scheduler.urgent == {("a", "one"), ("b", "two")}


def test_a_redis_ca_secret_is_mounted_and_named_to_the_service() -> None:
    deployment = m.desired_deployment(make_settings(callback_redis_ca_secret="redis-ca"))
    assert env_of(deployment)["MCPGW_CALLBACK_REDIS_CA_FILE"] == m.REDIS_CA_FILE
    mounts = {v["name"]: v for v in container(deployment)["volumeMounts"]}
    assert mounts[m.REDIS_CA_VOLUME] == {
        "name": m.REDIS_CA_VOLUME,
        "mountPath": m.REDIS_CA_DIR,
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    secret = volumes[m.REDIS_CA_VOLUME]["secret"]
    assert secret["secretName"] == "redis-ca"
    assert secret["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


def test_no_redis_ca_without_the_setting() -> None:
    deployment = m.desired_deployment(make_settings())
    assert "MCPGW_CALLBACK_REDIS_CA_FILE" not in env_of(deployment)
    assert m.REDIS_CA_VOLUME not in {v["name"] for v in container(deployment)["volumeMounts"]}
