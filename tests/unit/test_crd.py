"""The generated CRD: drift against the committed file, structural schema, validation, columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mcpgw_core.api import ConditionType
from mcpgw_operator import crd
from mcpgw_operator.api_reference import api_reference_markdown
from mcpgw_operator.crd_schema import SchemaConversionError, structural_schema, walk

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / crd.DEFAULT_PATH
CHART_COPY = REPO_ROOT / crd.CHART_PATH


@pytest.fixture(scope="module")
def root_schema() -> dict[str, Any]:
    version = crd.crd_manifest()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _node(schema: dict[str, Any], path: str) -> dict[str, Any]:
    nodes = dict(walk(schema))
    assert path in nodes, f"{path} missing from the schema"
    return nodes[path]


def _all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _all_keys(v)}
    return set()


def test_committed_crd_matches_the_models() -> None:
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == crd.render_crd(), (
        f"{crd.DEFAULT_PATH} is out of date with mcpgw_core/api.py; "
        f"regenerate it with `{crd.REGENERATE_COMMAND}` from the repository root"
    )


def test_chart_copy_matches_the_models() -> None:
    # The chart's CRD template includes this copy; drift would install an older schema.
    committed = CHART_COPY.read_text(encoding="utf-8") if CHART_COPY.exists() else ""
    assert committed == crd.render_crd(), (
        f"{crd.CHART_PATH} is out of date with mcpgw_core/api.py; "
        f"regenerate it with `{crd.REGENERATE_COMMAND}` from the repository root"
    )


def test_chart_template_includes_the_chart_copy() -> None:
    template = (REPO_ROOT / "charts" / "mcpgw-operator" / "templates" / "crds.yaml").read_text()
    relative = crd.CHART_PATH.relative_to(Path("charts") / "mcpgw-operator")
    assert f'.Files.Get "{relative.as_posix()}"' in template


def test_committed_crd_is_one_yaml_document_of_the_right_kind() -> None:
    docs = list(yaml.safe_load_all(crd.render_crd()))
    assert len(docs) == 1
    assert docs[0]["kind"] == "CustomResourceDefinition"
    assert docs[0]["metadata"]["name"] == "mcpgateways.mcpgw.dev"


def test_names_scope_version_and_status_subresource() -> None:
    spec = crd.crd_manifest()["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == "mcpgateways"
    assert spec["names"]["shortNames"] == ["mcpgw"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_every_schema_node_has_a_type(root_schema: dict[str, Any]) -> None:
    untyped = [path for path, node in walk(root_schema) if "type" not in node]
    assert untyped == []
    assert len(walk(root_schema)) > 60  # the walk really descends into spec and status


def test_no_pydantic_only_keywords_remain(root_schema: dict[str, Any]) -> None:
    assert _all_keys(root_schema) & {"$ref", "$defs", "anyOf", "allOf", "title"} == set()
    assert all(node.get("default", "") is not None for _, node in walk(root_schema))


def test_status_has_full_schema_without_defaults(root_schema: dict[str, Any]) -> None:
    status_nodes = [node for path, node in walk(root_schema) if path.startswith(".status")]
    assert not any("default" in node for node in status_nodes)
    assert not any("x-kubernetes-preserve-unknown-fields" in node for node in status_nodes)


@pytest.mark.parametrize(
    ("path", "required"),
    [
        (".", ["spec"]),
        (".spec", ["url"]),
        (".spec.oauth.registration.clientSecretRef", ["name"]),
        (".spec.oauth.registration.initialAccessTokenRef", ["name"]),
        (".status.conditions[]", ["type", "status", "reason", "message", "lastTransitionTime"]),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_required_fields(root_schema: dict[str, Any], path: str, required: list[str]) -> None:
    assert _node(root_schema, path).get("required") == required


@pytest.mark.parametrize(
    ("path", "values"),
    [
        (".spec.oauth.registration.mode",
         ["Auto", "PreRegistered", "ClientIDMetadataDocument", "Dynamic"]),
        (".spec.oauth.registration.tokenEndpointAuthMethod",
         ["client_secret_basic", "client_secret_post", "none"]),
        (".spec.deletionPolicy", ["Delete", "Orphan"]),
        (".status.conditions[].status", ["True", "False", "Unknown"]),
    ],
    ids=["mode", "auth-method", "deletion-policy", "condition-status"],
)  # fmt: skip
def test_enums(root_schema: dict[str, Any], path: str, values: list[str]) -> None:
    assert _node(root_schema, path)["enum"] == values


def test_defaults_let_the_api_server_fill_the_registration_mode(
    root_schema: dict[str, Any],
) -> None:
    # oauth and registration default to {} so mode: Auto is filled in even when oauth is omitted.
    assert _node(root_schema, ".spec.oauth")["default"] == {}
    assert _node(root_schema, ".spec.oauth.registration")["default"] == {}
    assert _node(root_schema, ".spec.oauth.registration.mode")["default"] == "Auto"
    assert _node(root_schema, ".spec.deletionPolicy")["default"] == "Delete"
    assert _node(root_schema, ".spec.oauth.registration.clientSecretRef.clientIdKey")[
        "default"
    ] == ("client_id")


def _rules(node: dict[str, Any]) -> dict[str, str]:
    return {rule["message"]: rule["rule"] for rule in node.get("x-kubernetes-validations", [])}


def test_cel_rules(root_schema: dict[str, Any]) -> None:
    registration = _rules(_node(root_schema, ".spec.oauth.registration"))
    assert (
        "has(self.clientSecretRef)" in registration["mode PreRegistered requires clientSecretRef"]
    )
    assert "clientSecretRef is only used with mode PreRegistered or Auto" in registration
    assert "initialAccessTokenRef is only used with mode Dynamic or Auto" in registration
    for path in (".spec.url", ".spec.oauth.issuer", ".spec.oauth.resource"):
        rules = _rules(_node(root_schema, path))
        assert "self.startsWith('https://')" in rules["must be an http:// or https:// URL"], path
        assert _node(root_schema, path)["maxLength"] == 2048


def test_conditions_are_a_map_list_keyed_by_type(root_schema: dict[str, Any]) -> None:
    conditions = _node(root_schema, ".status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_printer_columns() -> None:
    columns = {column["name"]: column for column in crd.printer_columns()}
    assert list(columns) == ["Ready", "Issuer", "Client", "Authorized", "Age", "Reason", "Message"]
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Authorized"]["jsonPath"] == (
        f'.status.conditions[?(@.type=="{ConditionType.AUTHORIZED}")].status'
    )
    assert columns["Client"]["jsonPath"] == ".status.client.clientID"
    assert columns["Issuer"]["jsonPath"] == ".status.discovery.issuer"
    assert columns["Age"]["type"] == "date"
    assert columns["Message"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].message'
    assert [name for name, c in columns.items() if c.get("priority")] == ["Reason", "Message"]


def test_printer_column_paths_exist_in_the_schema(root_schema: dict[str, Any]) -> None:
    paths = {path for path, _ in walk(root_schema)}
    assert {".status.discovery.issuer", ".status.client.clientID"} <= paths


@pytest.mark.parametrize("drifted", ["crd", "chart"], ids=["crds-dir", "chart-copy"])
def test_check_command_detects_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], drifted: str
) -> None:
    paths = {"crd": tmp_path / "crd.yaml", "chart": tmp_path / "chart" / "crd.yaml"}
    args = ["--path", str(paths["crd"]), "--chart-path", str(paths["chart"])]
    assert crd.main(["--write", *args]) == 0
    assert paths["chart"].read_text() == paths["crd"].read_text() == crd.render_crd()
    assert crd.main(["--check", *args]) == 0
    target = paths[drifted]
    target.write_text(target.read_text().replace("mcpgw", "other"), encoding="utf-8")
    assert crd.main(["--check", *args]) == 1
    err = capsys.readouterr().err
    assert crd.REGENERATE_COMMAND in err
    assert str(target) in err


def test_stdout_is_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert crd.main([]) == 0
    assert capsys.readouterr().out == crd.render_crd()


class _Union(BaseModel):
    value: int | str


class _Untyped(BaseModel):
    value: object


@pytest.mark.parametrize("model", [_Union, _Untyped], ids=["real-union", "no-type"])
def test_models_without_structural_form_are_refused(model: type[BaseModel]) -> None:
    with pytest.raises(SchemaConversionError):
        structural_schema(model)


def test_markdown_reference_has_a_table_per_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert crd.main(["--markdown"]) == 0
    text = capsys.readouterr().out
    assert text == api_reference_markdown()
    headings = [line[4:] for line in text.splitlines() if line.startswith("### ")]
    assert headings[:2] == ["MCPGatewaySpec", "OAuthSpec"]
    assert set(headings) >= {"Registration", "ClientSecretRef", "MCPGatewayStatus", "Condition"}
    assert len(headings) == len(set(headings))
    assert "| `clientIdKey` | string | `client_id` | Key holding the client ID. |" in text
    assert "| `url` | string | required |" in text
    assert "enum: `Auto`, `PreRegistered`, `ClientIDMetadataDocument`, `Dynamic`" in text
    assert "Validation: mode PreRegistered requires clientSecretRef" in text
