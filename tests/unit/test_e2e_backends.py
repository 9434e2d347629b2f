"""The e2e suite's backend selection and the kind skip reason, with injected probes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.backends import BackendChoiceError, selected_backend
from tests.e2e.kind_manifests import PEER_PORT, chart_values, peer_manifests
from tests.e2e.kind_probe import ContainerProbe, Probe, kind_unavailable_reason

ALL = frozenset({"kind", "docker", "kubectl", "helm"})
ENGINE_UP = Probe(True, "27.5.1")
CONTAINERS_OK = ContainerProbe(Probe(True), Probe(True))
CAPS = "docker: Error response from daemon: ... unable to apply caps: operation not permitted"


def which_of(present: frozenset[str]) -> Callable[[str], str | None]:
    return lambda name: f"/usr/bin/{name}" if name in present else None


def never(name: str) -> Callable[[], object]:
    def probe() -> object:
        raise AssertionError(f"{name} must not be probed")

    return probe


def reason(
    present: frozenset[str] = ALL,
    info: Probe = ENGINE_UP,
    containers: ContainerProbe = CONTAINERS_OK,
) -> str | None:
    return kind_unavailable_reason(
        which=which_of(present), docker_info=lambda: info, containers=lambda: containers
    )


def test_everything_present_means_available() -> None:
    assert reason() is None


@pytest.mark.parametrize("missing", sorted(ALL), ids=lambda name: f"no-{name}")
def test_each_missing_binary_is_named_alone(missing: str) -> None:
    assert reason(ALL - {missing}) == f"`{missing}` binary not on PATH"


def test_every_missing_binary_is_named_in_order() -> None:
    got = reason(frozenset({"docker"}))
    assert got == (
        "`kind` binary not on PATH; `kubectl` binary not on PATH; `helm` binary not on PATH"
    )


def test_without_docker_the_engine_is_not_probed() -> None:
    got = kind_unavailable_reason(
        which=which_of(ALL - {"docker"}),
        docker_info=never("docker info"),  # type: ignore[arg-type]
        containers=never("containers"),  # type: ignore[arg-type]
    )
    assert got == "`docker` binary not on PATH"


def test_an_unreachable_engine_is_named_with_what_docker_said() -> None:
    down = Probe(False, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
    got = kind_unavailable_reason(
        which=which_of(ALL),
        docker_info=lambda: down,
        containers=never("containers"),  # type: ignore[arg-type]
    )
    assert got == (
        "docker engine not reachable (`docker info`: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock)"
    )


def test_refused_privileged_containers_are_named() -> None:
    got = reason(containers=ContainerProbe(Probe(True), Probe(False, CAPS)))
    assert got == (
        f"privileged containers refused by the docker engine ({CAPS}); "
        "kind's node containers need --privileged"
    )


def test_an_engine_that_starts_no_container_at_all_is_not_blamed_on_privileges() -> None:
    got = reason(containers=ContainerProbe(Probe(False, "no space left on device"), None))
    assert got == "the docker engine cannot start containers (no space left on device)"


def test_no_local_image_to_probe_with_is_not_a_reason() -> None:
    assert reason(containers=ContainerProbe(None, None)) is None


def test_missing_kind_and_refused_privileges_are_both_named() -> None:
    got = reason(ALL - {"kind"}, containers=ContainerProbe(Probe(True), Probe(False, CAPS)))
    assert got is not None
    assert got.startswith("`kind` binary not on PATH; privileged containers refused")


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        (None, {}, "local"),
        (None, {"MCPGW_E2E_CLUSTER": "kind"}, "kind"),
        (None, {"MCPGW_E2E_CLUSTER": " KIND "}, "kind"),
        ("local", {"MCPGW_E2E_CLUSTER": "kind"}, "local"),
        ("kind", {}, "kind"),
    ],
    ids=["default", "env", "env-normalized", "option-wins", "option"],
)
def test_backend_selection(option: str | None, env: dict[str, str], expected: str) -> None:
    assert selected_backend(option, env) == expected


def test_an_unknown_backend_names_its_source() -> None:
    with pytest.raises(BackendChoiceError, match=r"MCPGW_E2E_CLUSTER='minikube'"):
        selected_backend(None, {"MCPGW_E2E_CLUSTER": "minikube"})


def test_chart_values_trust_the_port_forward_and_run_two_replicas() -> None:
    values = chart_values("mcpgw:e2e-0123456789ab", "http://127.0.0.1:18080")
    assert values["image"] == {
        "repository": "mcpgw",
        "tag": "e2e-0123456789ab",
        "pullPolicy": "Never",
    }
    assert values["callback"]["replicas"] == 2
    assert values["callback"]["publicURL"] == "http://127.0.0.1:18080"
    assert "127.0.0.1/32" in values["callback"]["trustedProxies"]
    assert values["redis"] == {"mode": "bundled"}


def test_the_peer_binds_the_node_address_so_its_issuer_works_everywhere() -> None:
    doc = peer_manifests("mcpgw-oidc-peer:e2e-x")
    deployment = next(item for item in doc["items"] if item["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert pod["hostNetwork"] is True
    assert env["HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    # $(HOST_IP) is expanded by the kubelet only when HOST_IP is defined earlier in the list.
    names = [e["name"] for e in pod["containers"][0]["env"]]
    assert names.index("HOST_IP") < names.index("OIDC_PEER_HOST")
    assert env["OIDC_PEER_HOST"]["value"] == "$(HOST_IP)"
    assert env["PORT"]["value"] == str(PEER_PORT)
    assert env["OIDC_PEER_ROTATE_REFRESH_TOKENS"]["value"] == "true"
