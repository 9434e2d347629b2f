"""The MCPGateway API: group and version, condition types, reasons, and the spec/status models."""

from __future__ import annotations

from typing import Final

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

    # Registration
    REGISTRATION_REJECTED: Final = "RegistrationRejected"
    REGISTRATION_UNSUPPORTED: Final = "RegistrationUnsupported"
    INITIAL_ACCESS_TOKEN_INVALID: Final = "InitialAccessTokenInvalid"
    CLIENT_SECRET_MISSING: Final = "ClientSecretMissing"
    CLIENT_SECRET_EXPIRED: Final = "ClientSecretExpired"
    REDIRECT_URI_MISMATCH: Final = "RedirectURIMismatch"

    # Callback service and state store
    STATE_STORE_UNREACHABLE: Final = "StateStoreUnreachable"
    STATE_STORE_NOT_SHARED: Final = "StateStoreNotShared"
    HMAC_KEY_MISSING: Final = "HMACKeyMissing"

    # Tokens
    TOKEN_EXPIRED: Final = "TokenExpired"
    REFRESH_FAILED: Final = "RefreshFailed"
    TOKEN_EXCHANGE_FAILED: Final = "TokenExchangeFailed"


class StateRejection:
    """Why the callback service refused a `state` parameter (metrics label and error reason)."""

    EXPIRED: Final = "StateExpired"
    UNKNOWN: Final = "StateUnknown"
    REPLAYED: Final = "StateReplayed"
    SIGNATURE_INVALID: Final = "StateSignatureInvalid"
    GATEWAY_MISMATCH: Final = "StateGatewayMismatch"
    BINDING_MISMATCH: Final = "StateBindingMismatch"
    MALFORMED: Final = "StateMalformed"
