"""The MCPGateway API: group and version, condition types, reasons, and the spec/status models."""

# Reason names and enum values such as "ClientSecretExpired" are labels, not credentials.
# ruff: noqa: S105

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict, JsonValue

GROUP: Final = "mcpgw.dev"
VERSION: Final = "v1alpha1"
KIND: Final = "MCPGateway"
PLURAL: Final = "mcpgateways"
SINGULAR: Final = "mcpgateway"
SHORT_NAMES: Final = ("mcpgw",)


class ConditionType:
    """Condition types reported on every MCPGateway."""

    DISCOVERED: Final = "Discovered"
    REGISTERED: Final = "Registered"
    CALLBACK_READY: Final = "CallbackReady"
    STATE_STORE_READY: Final = "StateStoreReady"
    AUTHORIZED: Final = "Authorized"
    READY: Final = "Ready"


class Reason:
    """Condition reasons; each failure cause of the seed troubleshooting guide has its own."""

    # Success and progress
    DISCOVERED: Final = "Discovered"
    REGISTERED: Final = "Registered"
    READY: Final = "Ready"
    PROGRESSING: Final = "Progressing"
    AWAITING_CALLBACK_SERVICE: Final = "AwaitingCallbackService"
    AWAITING_AUTHORIZATION: Final = "AwaitingAuthorization"
    AUTHORIZED: Final = "Authorized"
    CALLBACK_READY: Final = "CallbackReady"
    STATE_STORE_READY: Final = "StateStoreReady"

    # Discovery
    DISCOVERY_FAILED: Final = "DiscoveryFailed"
    AUTHORIZATION_SERVER_UNREACHABLE: Final = "AuthorizationServerUnreachable"
    METADATA_INVALID: Final = "MetadataInvalid"
    ISSUER_MISMATCH: Final = "IssuerMismatch"
    PKCE_UNSUPPORTED: Final = "PKCEUnsupported"
    RESOURCE_MISMATCH: Final = "ResourceMismatch"
    AUTHORIZATION_SERVER_ERROR: Final = "AuthorizationServerError"

    # Registration
    REGISTRATION_REJECTED: Final = "RegistrationRejected"
    REGISTRATION_UNSUPPORTED: Final = "RegistrationUnsupported"
    INITIAL_ACCESS_TOKEN_INVALID: Final = "InitialAccessTokenInvalid"
    CLIENT_SECRET_MISSING: Final = "ClientSecretMissing"
    CLIENT_SECRET_EXPIRED: Final = "ClientSecretExpired"
    REDIRECT_URI_MISMATCH: Final = "RedirectURIMismatch"
    REGISTRATION_DELETE_FAILED: Final = "RegistrationDeleteFailed"
    REGISTRATION_NOT_FOUND: Final = "RegistrationNotFound"
    TOKEN_ENDPOINT_AUTH_METHOD_UNSUPPORTED: Final = "TokenEndpointAuthMethodUnsupported"

    # Callback service and state store
    CALLBACK_SERVICE_UNAVAILABLE: Final = "CallbackServiceUnavailable"
    STATE_STORE_UNREACHABLE: Final = "StateStoreUnreachable"
    STATE_STORE_NOT_SHARED: Final = "StateStoreNotShared"
    HMAC_KEY_MISSING: Final = "HMACKeyMissing"

    # Tokens
    TOKEN_EXPIRED: Final = "TokenExpired"
    REFRESH_FAILED: Final = "RefreshFailed"
    TOKEN_EXCHANGE_FAILED: Final = "TokenExchangeFailed"

    # Callback service requests (HTTP answers, logs and metrics; not condition reasons)
    UNAUTHENTICATED: Final = "Unauthenticated"
    UNTRUSTED_PROXY: Final = "UntrustedProxy"
    GATEWAY_NOT_FOUND: Final = "GatewayNotFound"
    CLIENT_NOT_REGISTERED: Final = "ClientNotRegistered"
    CLIENT_CHANGED: Final = "ClientChanged"
    ACCESS_DENIED: Final = "AccessDenied"
    AUTHORIZATION_CODE_MISSING: Final = "AuthorizationCodeMissing"
    KUBERNETES_UNAVAILABLE: Final = "KubernetesUnavailable"
    TOKEN_STORE_FAILED: Final = "TokenStoreFailed"
    # Authorize links minted for Kubernetes users (TokenReview + SubjectAccessReview)
    BEARER_TOKEN_REJECTED: Final = "BearerTokenRejected"
    FORBIDDEN: Final = "Forbidden"
    LINK_UNKNOWN: Final = "LinkUnknown"
    LINK_EXPIRED: Final = "LinkExpired"
    LINK_REPLAYED: Final = "LinkReplayed"
    LINK_GATEWAY_MISMATCH: Final = "LinkGatewayMismatch"


class StateRejection:
    """Why the callback service refused a `state` parameter (metrics label and error reason)."""

    EXPIRED: Final = "StateExpired"
    UNKNOWN: Final = "StateUnknown"
    REPLAYED: Final = "StateReplayed"
    SIGNATURE_INVALID: Final = "StateSignatureInvalid"
    GATEWAY_MISMATCH: Final = "StateGatewayMismatch"
    BINDING_MISMATCH: Final = "StateBindingMismatch"
    MALFORMED: Final = "StateMalformed"


# ---------------------------------------------------------------------------------------------
# Spec and status models. The CRD schema and the API reference are generated from these, so a
# Field description is what `kubectl explain` shows. Wire names are camelCase (aliases); Python
# uses snake_case. Serialize with `to_wire()` so absent fields stay absent instead of null.
# ---------------------------------------------------------------------------------------------

# Upper bounds keep CEL cost estimates low and reject absurd input early.
URL_MAX_LENGTH: Final = 2048
NAME_MAX_LENGTH: Final = 253
_DNS_SUBDOMAIN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_SECRET_KEY: Final = r"^[-._a-zA-Z0-9]+$"
# RFC 6749 sec. 3.3 scope-token: printable ASCII except space, double quote and backslash.
_SCOPE_TOKEN: Final = r"^[!#-\[\]-~]+$"
_CONDITION_REASON: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
_DATE_TIME: Final[JsonDict] = {"format": "date-time"}

_HTTP_URL_RULE: Final[JsonDict] = {
    "rule": "self.startsWith('https://') || self.startsWith('http://')",
    "message": "must be an http:// or https:// URL",
}
_ISSUER_RULE: Final[JsonDict] = {
    "rule": "!self.contains('?') && !self.contains('#')",
    "message": "an issuer has no query or fragment (RFC 8414 sec. 2)",
}


def _is_http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def to_wire(model: BaseModel) -> dict[str, Any]:
    """The Kubernetes wire form of a model: camelCase keys, JSON values, no nulls."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class RegistrationMode(StrEnum):
    """How the operator obtains an OAuth client at the authorization server."""

    AUTO = "Auto"
    PRE_REGISTERED = "PreRegistered"
    CLIENT_ID_METADATA_DOCUMENT = "ClientIDMetadataDocument"
    DYNAMIC = "Dynamic"


class TokenEndpointAuthMethod(StrEnum):
    """How the client authenticates at the token endpoint (RFC 7591 sec. 2)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    NONE = "none"


class DeletionPolicy(StrEnum):
    """What happens to the registration at the authorization server when the gateway is deleted."""

    DELETE = "Delete"
    ORPHAN = "Orphan"


class ConditionStatus(StrEnum):
    """The status of a condition, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ClientSecretRef(_Model):
    """A Secret in the gateway's namespace holding a pre-registered client's credentials."""

    name: str = Field(
        description="Name of the Secret.", max_length=NAME_MAX_LENGTH, pattern=_DNS_SUBDOMAIN
    )
    client_id_key: str = Field(
        "client_id", description="Key holding the client ID.", pattern=_SECRET_KEY, max_length=253
    )
    client_secret_key: str = Field(
        "client_secret",
        description="Key holding the client secret; a public client may leave it out.",
        pattern=_SECRET_KEY,
        max_length=253,
    )


class SecretKeyRef(_Model):
    """One key of a Secret in the gateway's namespace."""

    name: str = Field(
        description="Name of the Secret.", max_length=NAME_MAX_LENGTH, pattern=_DNS_SUBDOMAIN
    )
    key: str = Field(
        "token", description="Key within the Secret.", pattern=_SECRET_KEY, max_length=253
    )


_REGISTRATION_RULES: Final[list[JsonValue]] = [
    {
        "rule": "!has(self.mode) || self.mode != 'PreRegistered' || has(self.clientSecretRef)",
        "message": "mode PreRegistered requires clientSecretRef",
    },
    {
        "rule": "!has(self.clientSecretRef) || !has(self.mode)"
        " || self.mode in ['PreRegistered', 'Auto']",
        "message": "clientSecretRef is only used with mode PreRegistered or Auto",
    },
    {
        "rule": "!has(self.initialAccessTokenRef) || !has(self.mode)"
        " || self.mode in ['Dynamic', 'Auto']",
        "message": "initialAccessTokenRef is only used with mode Dynamic or Auto",
    },
]


class Registration(_Model):
    """How the OAuth client is obtained. Auto tries, in the MCP authorization spec's order: the
    pre-registered client when clientSecretRef is set, then a Client ID Metadata Document when
    the authorization server supports it, then Dynamic Client Registration (RFC 7591)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _REGISTRATION_RULES})

    mode: RegistrationMode = Field(RegistrationMode.AUTO, description="Registration mode.")
    client_secret_ref: ClientSecretRef | None = Field(
        None, description="Credentials of a pre-registered client (PreRegistered or Auto)."
    )
    initial_access_token_ref: SecretKeyRef | None = Field(
        None,
        description="Initial access token for authorization servers that require one for "
        "Dynamic Client Registration (RFC 7591 sec. 3).",
    )
    token_endpoint_auth_method: TokenEndpointAuthMethod | None = Field(
        None,
        description="Token endpoint authentication method; negotiated from the authorization "
        "server's metadata when unset.",
    )
    client_name: str | None = Field(
        None,
        description="client_name sent at registration; defaults to one derived from the "
        "gateway's namespace and name.",
        max_length=256,
    )

    @model_validator(mode="after")
    def _check_mode(self) -> Registration:
        mode = self.mode
        if mode is RegistrationMode.PRE_REGISTERED and self.client_secret_ref is None:
            raise ValueError("mode PreRegistered requires clientSecretRef")
        if self.client_secret_ref is not None and mode not in (
            RegistrationMode.PRE_REGISTERED,
            RegistrationMode.AUTO,
        ):
            raise ValueError("clientSecretRef is only used with mode PreRegistered or Auto")
        if self.initial_access_token_ref is not None and mode not in (
            RegistrationMode.DYNAMIC,
            RegistrationMode.AUTO,
        ):
            raise ValueError("initialAccessTokenRef is only used with mode Dynamic or Auto")
        return self


class OAuthSpec(_Model):
    """How the operator finds the authorization server and what it asks for."""

    issuer: str | None = Field(
        None,
        description="Issuer of the authorization server. When set, protected resource metadata "
        "discovery (RFC 9728) is skipped.",
        max_length=URL_MAX_LENGTH,
        json_schema_extra={"x-kubernetes-validations": [_HTTP_URL_RULE, _ISSUER_RULE]},
    )
    scopes: list[Annotated[str, StringConstraints(pattern=_SCOPE_TOKEN, max_length=256)]] = Field(
        default_factory=list,
        description="Scopes to request; when empty, the resource's scopes_supported are used.",
        json_schema_extra={"x-kubernetes-list-type": "set", "maxItems": 64},
    )
    resource: str | None = Field(
        None,
        description="Resource indicator (RFC 8707) sent in authorization and token requests; "
        "defaults to the resource named by the protected resource metadata, else spec.url.",
        max_length=URL_MAX_LENGTH,
        json_schema_extra={"x-kubernetes-validations": [_HTTP_URL_RULE]},
    )
    registration: Registration = Field(
        default_factory=Registration,
        description="How the OAuth client is obtained.",
        json_schema_extra={"default": {}},
    )

    @field_validator("issuer", "resource")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _is_http_url(value)

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str | None) -> str | None:
        if value is not None and ("?" in value or "#" in value):
            raise ValueError("an issuer has no query or fragment (RFC 8414 sec. 2)")
        return value

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        # The API server enforces this through x-kubernetes-list-type: set.
        if len(set(value)) != len(value):
            raise ValueError("scopes must be unique")
        return value


class SecretTemplate(_Model):
    """Metadata copied onto the Secrets the operator creates for this gateway."""

    labels: dict[str, str] = Field(default_factory=dict, description="Labels to add.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations to add.")


class MCPGatewaySpec(_Model):
    """The desired state of an MCPGateway: one upstream MCP server that needs OAuth."""

    url: str = Field(
        description="URL of the upstream MCP server (the OAuth protected resource).",
        max_length=URL_MAX_LENGTH,
        json_schema_extra={"x-kubernetes-validations": [_HTTP_URL_RULE]},
    )
    oauth: OAuthSpec = Field(
        default_factory=OAuthSpec,
        description="Authorization server discovery and client registration.",
        json_schema_extra={"default": {}},
    )
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.DELETE,
        description="Delete removes the client registration at the authorization server "
        "(RFC 7592) when the gateway is deleted; Orphan leaves it.",
    )
    secret_template: SecretTemplate = Field(
        default_factory=SecretTemplate,
        description="Labels and annotations for the Secrets the operator creates.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _is_http_url(value)


class Condition(_Model):
    """One aspect of the gateway's state, shaped like metav1.Condition."""

    type: str = Field(description="Condition type, such as Ready.", max_length=316)
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="CamelCase reason for the last transition or update.",
        max_length=1024,
        pattern=_CONDITION_REASON,
    )
    message: str = Field(description="Human-readable, redacted detail.", max_length=32768)
    last_transition_time: str = Field(
        description="When status last changed (RFC 3339).",
        json_schema_extra=_DATE_TIME,
    )
    observed_generation: int | None = Field(
        None, description="metadata.generation the condition was set for.", ge=0
    )


class DiscoveryHop(_Model):
    """One request made while discovering the authorization server."""

    url: str = Field(description="URL fetched.")
    outcome: str = Field(description="What it gave: ok, an HTTP status, or a failure reason.")


class DiscoveryStatus(_Model):
    """What discovery found, hop by hop."""

    hops: list[DiscoveryHop] = Field(default_factory=list, description="Requests in order.")
    resource_metadata_url: str | None = Field(
        None, alias="resourceMetadataURL", description="Protected resource metadata (RFC 9728)."
    )
    issuer: str | None = Field(None, description="Issuer of the authorization server.")
    authorization_endpoint: str | None = Field(None, description="Authorization endpoint.")
    token_endpoint: str | None = Field(None, description="Token endpoint.")
    registration_endpoint: str | None = Field(
        None, description="Dynamic Client Registration endpoint (RFC 7591), if offered."
    )
    code_challenge_methods_supported: list[str] = Field(
        default_factory=list, description="PKCE methods the server supports."
    )
    token_endpoint_auth_methods_supported: list[str] = Field(
        default_factory=list, description="Token endpoint authentication methods supported."
    )
    grant_types_supported: list[str] = Field(
        default_factory=list, description="Grant types supported."
    )


class ClientStatus(_Model):
    """The OAuth client in use."""

    client_id: str | None = Field(None, alias="clientID", description="The client ID.")
    mode: RegistrationMode | None = Field(None, description="Registration mode actually used.")
    secret_name: str | None = Field(None, description="Secret holding the client credentials.")
    issued_at: str | None = Field(
        None, description="When the client was issued (RFC 3339).", json_schema_extra=_DATE_TIME
    )
    secret_expires_at: str | None = Field(
        None,
        description="When the client secret expires (RFC 3339); absent when it does not.",
        json_schema_extra=_DATE_TIME,
    )
    fingerprint: str | None = Field(
        None,
        description="Hash of the registration inputs (issuer, redirect URIs, scopes, auth "
        "method); a change replaces the registration.",
    )
    client_name: str | None = Field(None, description="client_name used at registration.")


class AuthorizationStatus(_Model):
    """Where users authorize and how far that has got."""

    redirect_uri: str | None = Field(
        None, alias="redirectURI", description="Redirect URI registered for the client."
    )
    authorize_url: str | None = Field(
        None, alias="authorizeURL", description="URL to hand a user to start authorization."
    )
    token_expires_at: str | None = Field(
        None,
        description="Earliest expiry among the stored access tokens (RFC 3339).",
        json_schema_extra=_DATE_TIME,
    )
    users_authorized: int | None = Field(
        None, description="Users whose stored tokens are usable (unexpired or refreshable).", ge=0
    )


class RetryStatus(_Model):
    """Backoff state after a failure, so retries are visible without logs."""

    attempts: int = Field(0, description="Consecutive failed attempts.", ge=0)
    next_retry_at: str | None = Field(
        None, description="When the next attempt is due (RFC 3339).", json_schema_extra=_DATE_TIME
    )
    last_error_reason: str | None = Field(None, description="Reason of the last failure.")


class MCPGatewayStatus(_Model):
    """The observed state of an MCPGateway."""

    observed_generation: int | None = Field(
        None, description="metadata.generation last reconciled.", ge=0
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Discovered, Registered, CallbackReady, StateStoreReady, Authorized and "
        "the summary Ready.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    discovery: DiscoveryStatus | None = Field(None, description="Discovery results.")
    client: ClientStatus | None = Field(None, description="The OAuth client in use.")
    authorization: AuthorizationStatus | None = Field(None, description="User authorization.")
    retry: RetryStatus | None = Field(None, description="Backoff after a failure.")
