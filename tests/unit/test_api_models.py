"""The MCPGateway spec and status models: wire names, defaults, validation mirrored by the CRD."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcpgw_core.api import (
    ClientStatus,
    Condition,
    ConditionStatus,
    DeletionPolicy,
    MCPGatewaySpec,
    MCPGatewayStatus,
    RegistrationMode,
    TokenEndpointAuthMethod,
    to_wire,
)

URL = "https://mcp.example.test/mcp"


def make_spec(**overrides: Any) -> dict[str, Any]:
    """A wire-form spec; overrides replace top-level keys."""
    return {"url": URL, **overrides}


def test_minimal_spec_gets_the_documented_defaults() -> None:
    spec = MCPGatewaySpec.model_validate(make_spec())
    assert spec.oauth.registration.mode is RegistrationMode.AUTO
    assert spec.deletion_policy is DeletionPolicy.DELETE
    assert spec.oauth.scopes == []
    assert spec.oauth.issuer is None
    assert spec.secret_template.labels == {}


def test_wire_names_are_camel_case_and_round_trip() -> None:
    wire = make_spec(
        oauth={
            "issuer": "https://as.example.test/tenant",
            "scopes": ["mcp:read", "offline_access"],
            "resource": "https://mcp.example.test",
            "registration": {
                "mode": "PreRegistered",
                "clientSecretRef": {"name": "creds", "clientIdKey": "id", "clientSecretKey": "pw"},
                "tokenEndpointAuthMethod": "client_secret_post",
                "clientName": "gateway one",
            },
        },
        deletionPolicy="Orphan",
        secretTemplate={"labels": {"team": "a"}, "annotations": {"note": "x"}},
    )
    spec = MCPGatewaySpec.model_validate(wire)
    registration = spec.oauth.registration
    assert registration.client_secret_ref is not None
    assert registration.client_secret_ref.client_secret_key == "pw"
    assert registration.token_endpoint_auth_method is TokenEndpointAuthMethod.CLIENT_SECRET_POST
    assert to_wire(spec) == wire


def test_python_names_are_accepted_too() -> None:
    spec = MCPGatewaySpec(url=URL, deletion_policy=DeletionPolicy.ORPHAN)
    assert to_wire(spec)["deletionPolicy"] == "Orphan"


def test_to_wire_leaves_absent_fields_out() -> None:
    wire = to_wire(MCPGatewaySpec(url=URL))
    assert "issuer" not in wire["oauth"]
    assert "clientSecretRef" not in wire["oauth"]["registration"]
    assert to_wire(ClientStatus(client_id="abc")) == {"clientID": "abc"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "ftp://mcp.example.test"}, "http:// or https://"),
        ({"url": "mcp.example.test"}, "http:// or https://"),
        ({"oauth": {"issuer": "as.example.test"}}, "http:// or https://"),
        ({"oauth": {"resource": "urn:x"}}, "http:// or https://"),
        ({"oauth": {"issuer": "https://as.example.test/#frag"}}, "no query or fragment"),
        ({"oauth": {"scopes": ["a b"]}}, "should match pattern"),
        ({"oauth": {"scopes": ["mcp", "mcp"]}}, "unique"),
        ({"oauth": {"registration": {"mode": "PreRegistered"}}}, "requires clientSecretRef"),
        (
            {"oauth": {"registration": {"mode": "Dynamic", "clientSecretRef": {"name": "s"}}}},
            "clientSecretRef is only used",
        ),
        (
            {"oauth": {"registration": {"mode": "ClientIDMetadataDocument",
                                        "initialAccessTokenRef": {"name": "t"}}}},
            "initialAccessTokenRef is only used",
        ),
        ({"oauth": {"registration": {"mode": "Magic"}}}, "Input should be"),
        ({"oauth": {"registration": {"clientSecretRef": {"name": "Bad_Name"}}}}, "pattern"),
        ({"deletionPolicy": "Keep"}, "Input should be"),
    ],
    ids=[
        "ftp-url", "url-without-scheme", "issuer-without-scheme", "resource-urn",
        "issuer-with-fragment",
        "scope-with-space", "duplicate-scope", "preregistered-without-secret",
        "dynamic-with-secret", "cimd-with-initial-token", "unknown-mode", "secret-name-invalid",
        "unknown-deletion-policy",
    ],
)  # fmt: skip
def test_invalid_specs_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MCPGatewaySpec.model_validate(make_spec(**overrides))


@pytest.mark.parametrize(
    "registration",
    [
        {"mode": "Auto", "clientSecretRef": {"name": "s"}, "initialAccessTokenRef": {"name": "t"}},
        {"mode": "PreRegistered", "clientSecretRef": {"name": "s"}},
        {"mode": "Dynamic", "initialAccessTokenRef": {"name": "t", "key": "iat"}},
        {"mode": "ClientIDMetadataDocument"},
    ],
    ids=["auto-with-both", "preregistered", "dynamic-with-token", "cimd"],
)
def test_valid_registrations_are_accepted(registration: dict[str, Any]) -> None:
    spec = MCPGatewaySpec.model_validate(make_spec(oauth={"registration": registration}))
    assert spec.oauth.registration.mode == registration["mode"]


def test_status_parses_its_wire_form() -> None:
    wire = {
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Registered",
                "status": "True",
                "reason": "Registered",
                "message": "client registered",
                "lastTransitionTime": "2025-01-02T03:04:05Z",
                "observedGeneration": 3,
            }
        ],
        "discovery": {
            "hops": [{"url": "https://mcp.example.test/.well-known/x", "outcome": "404"}],
            "resourceMetadataURL": "https://mcp.example.test/.well-known/x",
            "codeChallengeMethodsSupported": ["S256"],
        },
        "client": {"clientID": "abc", "mode": "Dynamic", "secretExpiresAt": "2026-01-01T00:00:00Z"},
        "authorization": {"redirectURI": "https://cb.example.test/oauth/callback"},
        "retry": {"attempts": 2, "nextRetryAt": "2025-01-02T03:04:15Z", "lastErrorReason": "X"},
    }
    status = MCPGatewayStatus.model_validate(wire)
    assert status.conditions[0].status is ConditionStatus.TRUE
    assert status.discovery is not None
    assert status.discovery.resource_metadata_url == "https://mcp.example.test/.well-known/x"
    assert status.client is not None
    assert status.client.mode is RegistrationMode.DYNAMIC
    assert status.authorization is not None
    assert status.authorization.redirect_uri == "https://cb.example.test/oauth/callback"
    assert status.retry is not None
    assert status.retry.attempts == 2
    dumped = to_wire(status)
    assert dumped["conditions"] == wire["conditions"]
    assert dumped["client"] == wire["client"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "Maybe"), ("reason", "has space"), ("reason", "")],
    ids=["status-not-tristate", "reason-with-space", "reason-empty"],
)
def test_condition_rejects_what_the_api_server_would(field: str, value: str) -> None:
    fields = {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "",
        "lastTransitionTime": "2025-01-02T03:04:05Z",
    }
    with pytest.raises(ValidationError):
        Condition.model_validate({**fields, field: value})
