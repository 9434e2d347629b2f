"""Pure registration decisions: mode choice, auth method, grant types, body and fingerprint."""

from __future__ import annotations

from typing import Any

import pytest

from mcpgw_core.api import Reason, RegistrationMode
from mcpgw_core.errors import OAuthError
from mcpgw_core.metadata import AuthorizationServerMetadata, parse_authorization_server
from mcpgw_core.registration_policy import (
    RegistrationRequest,
    build_registration_body,
    choose_registration_mode,
    negotiate_auth_method,
    registration_fingerprint,
)
from tests.support.fake_http import ISSUER, REDIRECT_URI, as_metadata


def server(**overrides: Any) -> AuthorizationServerMetadata:
    return parse_authorization_server(
        as_metadata(**overrides), issuer=ISSUER, metadata_url=f"{ISSUER}/meta"
    )


CIMD = {"client_id_metadata_document_supported": True}
NO_DCR = {"registration_endpoint": None}


@pytest.mark.parametrize(
    ("mode", "has_secret", "overrides", "expected"),
    [
        pytest.param("Auto", True, CIMD, RegistrationMode.PRE_REGISTERED, id="auto-secret-first"),
        pytest.param(
            "Auto", False, CIMD, RegistrationMode.CLIENT_ID_METADATA_DOCUMENT, id="auto-cimd-next"
        ),
        pytest.param("Auto", False, {}, RegistrationMode.DYNAMIC, id="auto-dcr-last"),
        pytest.param("PreRegistered", True, NO_DCR, RegistrationMode.PRE_REGISTERED, id="pre"),
        pytest.param("Dynamic", False, CIMD, RegistrationMode.DYNAMIC, id="dynamic-despite-cimd"),
        pytest.param(
            RegistrationMode.CLIENT_ID_METADATA_DOCUMENT,
            False,
            CIMD,
            RegistrationMode.CLIENT_ID_METADATA_DOCUMENT,
            id="cimd-enum-input",
        ),
    ],
)
def test_choose_registration_mode(
    mode: str, has_secret: bool, overrides: dict[str, Any], expected: RegistrationMode
) -> None:
    assert choose_registration_mode(mode, has_secret, server(**overrides)) is expected


@pytest.mark.parametrize(
    ("mode", "has_secret", "overrides", "reason"),
    [
        pytest.param("Auto", False, NO_DCR, Reason.REGISTRATION_UNSUPPORTED, id="auto-nothing"),
        pytest.param("Dynamic", False, NO_DCR, Reason.REGISTRATION_UNSUPPORTED, id="dynamic-no-ep"),
        pytest.param(
            "ClientIDMetadataDocument", False, {}, Reason.REGISTRATION_UNSUPPORTED, id="cimd-no"
        ),
        pytest.param("PreRegistered", False, {}, Reason.CLIENT_SECRET_MISSING, id="pre-no-secret"),
        pytest.param("Sideways", False, {}, Reason.REGISTRATION_UNSUPPORTED, id="unknown-mode"),
    ],
)
def test_choose_registration_mode_refusals(
    mode: str, has_secret: bool, overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(OAuthError) as caught:
        choose_registration_mode(mode, has_secret, server(**overrides))
    assert caught.value.reason == reason
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("supported", "requested", "expected"),
    [
        pytest.param(
            ["none", "client_secret_post", "client_secret_basic"],
            None,
            "client_secret_basic",
            id="prefer-basic",
        ),
        pytest.param(["none", "client_secret_post"], None, "client_secret_post", id="then-post"),
        pytest.param(["private_key_jwt", "none"], None, "none", id="then-none"),
        pytest.param(["client_secret_basic", "none"], "none", "none", id="as-specified"),
    ],
)
def test_negotiate_auth_method(supported: list[str], requested: str | None, expected: str) -> None:
    metadata = server(token_endpoint_auth_methods_supported=supported)
    assert negotiate_auth_method(metadata, requested) == expected


def test_negotiate_auth_method_refusals_name_what_is_offered() -> None:
    metadata = server(token_endpoint_auth_methods_supported=["private_key_jwt"])
    with pytest.raises(OAuthError) as unsupported:
        negotiate_auth_method(metadata, "client_secret_post")
    with pytest.raises(OAuthError) as nothing_usable:
        negotiate_auth_method(metadata, None)
    assert unsupported.value.reason == Reason.TOKEN_ENDPOINT_AUTH_METHOD_UNSUPPORTED
    assert unsupported.value.message == (
        f"tokenEndpointAuthMethod client_secret_post is not supported by {ISSUER}, "
        "which offers 'private_key_jwt'"
    )
    assert nothing_usable.value.reason == Reason.TOKEN_ENDPOINT_AUTH_METHOD_UNSUPPORTED


@pytest.mark.parametrize(
    ("grants", "expected"),
    [
        pytest.param(
            ["authorization_code", "refresh_token"],
            ["authorization_code", "refresh_token"],
            id="refresh-advertised",
        ),
        pytest.param(
            ["authorization_code", "client_credentials"], ["authorization_code"], id="no-refresh"
        ),
        pytest.param(None, ["authorization_code"], id="absent-means-rfc8414-default"),
    ],
)
def test_grant_types_ask_for_refresh_only_when_advertised(
    grants: list[str] | None, expected: list[str]
) -> None:
    body = build_registration_body(
        server(grant_types_supported=grants),
        RegistrationRequest(client_name="gw", redirect_uris=(REDIRECT_URI,)),
    )
    assert body["grant_types"] == expected


def test_registration_body() -> None:
    request = RegistrationRequest(
        client_name="mcpgw ns/gw",
        redirect_uris=(REDIRECT_URI,),
        scopes=("mcp:read", "offline_access"),
        token_endpoint_auth_method="client_secret_basic",
    )
    assert build_registration_body(server(), request) == {
        "client_name": "mcpgw ns/gw",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "mcp:read offline_access",
    }
    no_scope = RegistrationRequest(client_name="gw", redirect_uris=(REDIRECT_URI,))
    assert "scope" not in build_registration_body(server(), no_scope)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"grant_types_supported": ["client_credentials"]}, id="no-auth-code"),
        pytest.param({"response_types_supported": ["token"]}, id="no-code-response"),
    ],
)
def test_a_server_without_the_code_flow_is_refused(overrides: dict[str, Any]) -> None:
    request = RegistrationRequest(client_name="gw", redirect_uris=(REDIRECT_URI,))
    with pytest.raises(OAuthError) as caught:
        build_registration_body(server(**overrides), request)
    assert caught.value.reason == Reason.REGISTRATION_UNSUPPORTED


BASE = (ISSUER, [REDIRECT_URI], ["a", "b"], "client_secret_basic")


def test_fingerprint_is_pinned() -> None:
    # A changed algorithm would re-register every gateway: change this value only on purpose.
    assert registration_fingerprint(*BASE) == (
        "8a01394d7073c436b46a80945d83d1a51d927a40e3a1fdb5f33afa6ffb4c2a93"
    )


def test_fingerprint_ignores_order_and_repeats() -> None:
    assert registration_fingerprint(ISSUER, [REDIRECT_URI] * 2, ["b", "a", "b"], BASE[3]) == (
        registration_fingerprint(*BASE)
    )


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param((ISSUER + "x", *BASE[1:]), id="issuer"),
        pytest.param((ISSUER, [REDIRECT_URI + "2"], *BASE[2:]), id="redirect"),
        pytest.param((*BASE[:2], ["a"], BASE[3]), id="scopes"),
        pytest.param((*BASE[:3], "none"), id="auth-method"),
        pytest.param((*BASE[:3], None), id="auth-method-unset"),
    ],
)
def test_fingerprint_changes_with_each_input(changed: tuple[Any, ...]) -> None:
    assert registration_fingerprint(*changed) != registration_fingerprint(*BASE)
