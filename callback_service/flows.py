"""The two legs of an authorization flow: start (authorize redirect) and finish (callback).

Framework-free: the routers turn what these return or raise into HTTP. The order of checks in
`finish_flow` matters: everything that needs no Redis (signature, age, gateway, browser binding,
issuer) runs first, then the record is consumed, and only then does the authorization server's
answer count; nothing the request carries is shown to the user before the state proved genuine.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from callback_service.errors import ServiceError
from callback_service.gateways import load_gateway_client
from callback_service.resources import Resources
from callback_service.settings import CallbackSettings
from callback_service.token_secret import store_tokens
from mcpgw_core.api import Reason, StateRejection
from mcpgw_core.pkce import CHALLENGE_METHOD, make_pkce_pair
from mcpgw_core.redact import redact_text
from mcpgw_core.state import StateRejected, is_gateway_identity, make_binding_value
from mcpgw_core.state_store import FlowRecord
from mcpgw_core.token_secrets import token_secret
from mcpgw_core.tokens import TokenEndpointError, exchange_code

log = logging.getLogger(__name__)

# A binding cookie we issued: 32 random bytes, base64url. Anything else is replaced.
_BINDING_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_ERROR_CODE_RE: Final = re.compile(r"[a-z_]{1,64}")


@dataclass(frozen=True)
class StartedFlow:
    """Where to send the browser, and the binding value its cookie must carry."""

    location: str
    binding: str
    gateway: str


@dataclass(frozen=True)
class CallbackParams:
    """The query of the authorization server's redirect (RFC 6749 sec. 4.1.2, RFC 9207)."""

    state: str | None = None
    code: str | None = None
    error: str | None = None
    error_description: str | None = None
    iss: str | None = None


@dataclass(frozen=True)
class FinishedFlow:
    """A completed authorization: whose tokens, where they are, until when."""

    gateway: str
    user: str
    secret_name: str
    expires_at: datetime | None


def usable_binding(value: str | None) -> str | None:
    return value if value is not None and _BINDING_RE.fullmatch(value) else None


async def start_flow(
    res: Resources,
    settings: CallbackSettings,
    *,
    namespace: str,
    name: str,
    user: str,
    binding: str | None,
) -> StartedFlow:
    """Make PKCE and a browser-bound state, store the record, and build the authorize URL."""
    gateway = f"{namespace}/{name}"
    if not is_gateway_identity(gateway):
        raise ServiceError(404, Reason.GATEWAY_NOT_FOUND, "not a valid MCPGateway namespace/name")
    # Cached for a few seconds (gateway_cache.py): this is the hot path; the callback reads fresh.
    client = await res.gateways.get(res.kube, namespace, name)
    # The shared callback, or the per-gateway one that pins the gateway before the state is read.
    if client.redirect_uri not in (settings.redirect_uri, f"{settings.redirect_uri}/{gateway}"):
        raise ServiceError(
            409,
            Reason.REDIRECT_URI_MISMATCH,
            f"the client is registered with redirect URI {client.redirect_uri} but this service"
            f" receives callbacks at {settings.redirect_uri}",
        )
    ring = res.keys.current()
    # One binding per browser, reused, so two flows started in two tabs both complete.
    binding = usable_binding(binding) or make_binding_value()
    now = res.clock()
    issued = ring.sign_state(gateway=gateway, binding=binding, now=now)
    verifier, challenge = make_pkce_pair()
    record = FlowRecord(
        nonce=issued.nonce,
        gateway=gateway,
        user=user,
        code_verifier=verifier,
        redirect_uri=client.redirect_uri,
        client_id=client.client_id,
        created_at=now,
        resource=client.resource,
        scope=client.scope,
    )
    await res.store.create(record, settings.state_ttl_seconds)
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": client.scope,
        "state": issued.state,
        "code_challenge": challenge,
        "code_challenge_method": CHALLENGE_METHOD,
        "resource": client.resource,
    }
    location = _with_query(client.authorization_endpoint, {k: v for k, v in params.items() if v})
    log.info("flow started for gateway %s by user %s (key %s)", gateway, user, issued.kid)
    return StartedFlow(location=location, binding=binding, gateway=gateway)


async def finish_flow(
    res: Resources,
    settings: CallbackSettings,
    params: CallbackParams,
    *,
    binding: str | None,
    expected_gateway: str | None = None,
) -> FinishedFlow:
    """Verify, consume, exchange and store; raise `ServiceError` or an `OAuthError` otherwise."""
    if not params.state:
        raise StateRejected(StateRejection.MALFORMED, "the callback carries no state parameter")
    verified = res.keys.current().verify_state(
        params.state,
        binding=usable_binding(binding),
        now=res.clock(),
        max_age=settings.state_ttl_seconds,
        expected_gateway=expected_gateway,
    )
    namespace, _, name = verified.gateway.partition("/")
    client = await load_gateway_client(res.kube, namespace, name)
    if params.iss is not None and client.issuer is not None and params.iss != client.issuer:
        # RFC 9207: the response came from another gateway's authorization server (mix-up).
        raise StateRejected(
            StateRejection.GATEWAY_MISMATCH,
            "the authorization response came from an issuer other than this gateway's",
        )
    record = await res.store.consume(verified.nonce)
    if record.gateway != verified.gateway:
        raise StateRejected(
            StateRejection.GATEWAY_MISMATCH, "the flow record names another gateway"
        )
    if params.error is not None:
        raise _authorization_error(params)
    if not params.code:
        raise ServiceError(
            400,
            Reason.AUTHORIZATION_CODE_MISSING,
            "the authorization server redirected back without a code or an error",
        )
    if record.client_id != client.client_id:
        raise ServiceError(
            409,
            Reason.CLIENT_CHANGED,
            "the gateway was registered again while this flow was in flight",
        )
    try:
        tokens = await exchange_code(
            res.http,
            token_endpoint=client.token_endpoint,
            code=params.code,
            code_verifier=record.code_verifier,
            redirect_uri=record.redirect_uri,
            credentials=client.credentials(),
            now=datetime.fromtimestamp(res.clock(), UTC),
            resource=record.resource,
            time_limit=settings.http_timeout_seconds,
        )
    except TokenEndpointError as exc:
        res.metrics.token_exchanges.labels(result="rejected" if exc.definite else "failed").inc()
        raise
    res.metrics.token_exchanges.labels(result="ok").inc()
    manifest = token_secret(
        namespace=namespace,
        gateway=name,
        gateway_uid=client.uid,
        user=record.user,
        tokens=tokens,
    )
    secret_name = await store_tokens(res.kube, manifest)
    log.info("flow finished for gateway %s, user %s: tokens in Secret %s", verified.gateway,
             record.user, secret_name)  # fmt: skip
    return FinishedFlow(verified.gateway, record.user, secret_name, tokens.expires_at)


def _authorization_error(params: CallbackParams) -> ServiceError:
    code = params.error or ""
    code = code if _ERROR_CODE_RE.fullmatch(code) else "invalid_error_code"
    detail = f"the authorization server answered {code}"
    if params.error_description:
        detail += ": " + redact_text(params.error_description, secrets=(params.code,), limit=200)
    if code == "access_denied":
        return ServiceError(403, Reason.ACCESS_DENIED, detail, error=code)
    return ServiceError(400, Reason.AUTHORIZATION_SERVER_ERROR, detail, error=code)


def _with_query(endpoint: str, params: dict[str, str]) -> str:
    """Append `params` to an endpoint URL that may already carry a query (RFC 6749 sec. 3.1)."""
    parts = urlsplit(endpoint)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
