"""The service's one error type: HTTP status, reason, redacted message and the guide's headline."""

from __future__ import annotations

from typing import Final

from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.errors import OAuthError
from mcpgw_core.keyring import KeyRingError
from mcpgw_core.state import StateRejected
from mcpgw_core.state_store import StateStoreUnavailable
from mcpgw_core.tokens import TokenEndpointError

# The seed troubleshooting guide's wording, so people who grep for it still find it.
_REPLAY_HEADLINE: Final = "Invalid or expired state parameter - possible replay attack"
HEADLINES: Final[dict[str, str]] = {
    StateRejection.MALFORMED: _REPLAY_HEADLINE,
    StateRejection.EXPIRED: _REPLAY_HEADLINE,
    StateRejection.UNKNOWN: _REPLAY_HEADLINE,
    StateRejection.REPLAYED: _REPLAY_HEADLINE,
    StateRejection.SIGNATURE_INVALID: "Invalid state signature - possible CSRF attack",
    StateRejection.GATEWAY_MISMATCH: "State parameter gateway mismatch",
    StateRejection.BINDING_MISMATCH: (
        "State belongs to another browser - possible login CSRF (forwarded authorization link)"
    ),
    Reason.STATE_STORE_UNREACHABLE: "OAuth state store (Redis) is unreachable",
    Reason.HMAC_KEY_MISSING: "OAuth state signing keys are not loaded",
    Reason.ACCESS_DENIED: "Authorization was denied at the authorization server",
    Reason.AUTHORIZATION_SERVER_ERROR: "The authorization server reported an error",
    Reason.AUTHORIZATION_CODE_MISSING: "The authorization server sent no authorization code",
    Reason.TOKEN_EXCHANGE_FAILED: "Token exchange failed",
    Reason.UNAUTHENTICATED: "Authentication required",
    Reason.UNTRUSTED_PROXY: "Authentication required",
    Reason.GATEWAY_NOT_FOUND: "MCPGateway not found",
    Reason.CLIENT_NOT_REGISTERED: "The gateway has no registered OAuth client yet",
    Reason.CLIENT_CHANGED: "The gateway's OAuth client changed during the flow",
    Reason.REDIRECT_URI_MISMATCH: "Redirect URI mismatch",
    Reason.KUBERNETES_UNAVAILABLE: "The Kubernetes API is unavailable",
    Reason.TOKEN_STORE_FAILED: "The tokens could not be stored",
    Reason.BEARER_TOKEN_REJECTED: "Authentication required",
    Reason.FORBIDDEN: "Not allowed",
    Reason.LINK_UNKNOWN: "Invalid authorize link",
    Reason.LINK_EXPIRED: "Expired authorize link",
    Reason.LINK_REPLAYED: "Authorize link already used",
    Reason.LINK_GATEWAY_MISMATCH: "Authorize link belongs to another gateway",
}
_DEFAULT_HEADLINE: Final = "OAuth authorization failed"

# What the user can do about it; the page shows it under the message.
_NEXT_STEP: Final[dict[int, str]] = {
    400: "Start the authorization again from the beginning, in this browser.",
    401: "Sign in through your organisation's authentication proxy and try again.",
    403: "Start the authorization again and approve the request.",
    404: "Check the gateway's namespace and name.",
    409: "Wait until the gateway reports Registered=True, then start again.",
    502: "Start again; if it keeps failing, check the gateway's status and the server's logs.",
    503: "Try again in a minute; the service is degraded.",
}


_MINT_AGAIN: Final = "Mint a new link with 'kubectl mcpgw authorize-link' and open it once."
# Link refusals are 401s too, but signing in at the proxy is not what helps there.
_NEXT_STEP_BY_REASON: Final[dict[str, str]] = {
    Reason.LINK_UNKNOWN: _MINT_AGAIN,
    Reason.LINK_EXPIRED: _MINT_AGAIN,
    Reason.LINK_REPLAYED: _MINT_AGAIN,
    Reason.LINK_GATEWAY_MISMATCH: _MINT_AGAIN,
    Reason.BEARER_TOKEN_REJECTED: "Check your kubeconfig's credentials (kubectl auth whoami).",
    Reason.FORBIDDEN: "Ask for RBAC permission to update this MCPGateway.",
}


class ServiceError(OAuthError):
    """A request the service refuses or cannot finish; safe to show as it is."""

    def __init__(
        self, status_code: int, reason: str, message: str, *, error: str | None = None
    ) -> None:
        super().__init__(reason, message, retryable=status_code >= 500)
        self.status_code = status_code
        # The authorization server's own `error` code, when it gave one.
        self.error = error

    @property
    def headline(self) -> str:
        return HEADLINES.get(self.reason, _DEFAULT_HEADLINE)

    @property
    def next_step(self) -> str:
        by_reason = _NEXT_STEP_BY_REASON.get(self.reason)
        return by_reason or _NEXT_STEP.get(self.status_code, "Start the authorization again.")

    def body(self) -> dict[str, str]:
        """The JSON error body: reason, headline and message, all secret-free."""
        body = {"reason": self.reason, "error": self.headline, "message": self.message}
        if self.error:
            body["oauthError"] = self.error
        return body


def service_error(exc: OAuthError) -> ServiceError:
    """Map a protocol-core failure onto its HTTP answer."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, StateRejected):
        return ServiceError(400, exc.reason, exc.message)
    if isinstance(exc, StateStoreUnavailable | KeyRingError):
        return ServiceError(503, exc.reason, exc.message)
    if isinstance(exc, TokenEndpointError):
        return ServiceError(502, exc.reason, exc.message, error=exc.error)
    return ServiceError(502, exc.reason, exc.message)
