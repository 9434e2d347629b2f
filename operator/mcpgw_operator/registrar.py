"""Client registration with crash safety: intent first, the AS's answer persisted next.

The registration Secret (operator-only) holds a JSON record:
- `intent`: the client name and fingerprint of a registration about to be requested;
- `registration`: what the AS returned, with the RFC 7592 management token and URI;
- `pendingDeletion`: replaced registrations still to delete at their AS.
Writes use the Secret's resourceVersion, so two racing reconciles cannot both register: the
loser's write conflicts before it talks to the AS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from mcpgw_core.api import ClientSecretRef, MCPGatewaySpec, Reason, RegistrationMode
from mcpgw_core.discovery import Discovery
from mcpgw_core.errors import OAuthError
from mcpgw_core.kube import Kube, KubeError, core_path
from mcpgw_core.registration import (
    RegistrationRequest,
    delete_registration,
    register_client,
    registration_fingerprint,
)
from mcpgw_core.registration_policy import negotiate_auth_method
from mcpgw_operator import children
from mcpgw_operator.events import EventSink

JSON = dict[str, Any]


class RegistrationBusy(Exception):
    """Another writer changed the registration record; reconcile again shortly."""


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None
    auth_method: str
    mode: RegistrationMode
    client_name: str | None = None
    issued_at: int | None = None
    secret_expires_at: int | None = None
    fingerprint: str | None = None
    secret_name: str | None = None
    # What the AS registered; None when unknown (pre-registered clients).
    redirect_uris: tuple[str, ...] | None = None


def requested_scopes(spec: MCPGatewaySpec, found: Discovery) -> list[str]:
    """spec.oauth.scopes, else what the resource's 401 challenge asked for, else its
    scopes_supported (RFC 9728), else none."""
    if spec.oauth.scopes:
        return list(spec.oauth.scopes)
    if found.challenge_scope:
        return found.challenge_scope.split()
    if found.protected_resource is not None:
        return list(found.protected_resource.scopes_supported)
    return []


#: Replace a dynamically registered client this long before its secret expires.
SECRET_RENEWAL_MARGIN_SECONDS = 3600


def secret_expiring(
    registration: JSON, now: datetime, margin: float = SECRET_RENEWAL_MARGIN_SECONDS
) -> bool:
    """RFC 7591: client_secret_expires_at is epoch seconds, 0 (or absent) for never."""
    expires = registration.get("secretExpiresAt")
    if not expires:
        return False
    return float(expires) - margin <= now.timestamp()


def failpoint(name: str) -> None:
    """Testing hook: die here, as a crash or OOM kill would, when MCPGW_FAILPOINT names it."""
    if os.environ.get("MCPGW_FAILPOINT") == name:
        os._exit(137)


async def pre_registered(
    kube: Kube, namespace: str, ref: ClientSecretRef, auth: str
) -> ClientCredentials:
    secret = await kube.get(core_path("secrets", namespace, ref.name))
    if secret is None:
        raise OAuthError(
            Reason.CLIENT_SECRET_MISSING,
            f"Secret {ref.name} (clientSecretRef) was not found",
            retryable=True,
        )
    data = children.decode_data(secret)
    client_id = data.get(ref.client_id_key)
    if not client_id:
        raise OAuthError(
            Reason.CLIENT_SECRET_MISSING,
            f"Secret {ref.name} has no key {ref.client_id_key} (clientSecretRef.clientIdKey)",
            retryable=True,
        )
    secret_value = data.get(ref.client_secret_key)
    if not secret_value and auth != "none":
        raise OAuthError(
            Reason.CLIENT_SECRET_MISSING,
            f"Secret {ref.name} has no key {ref.client_secret_key} "
            "(clientSecretRef.clientSecretKey)",
            retryable=True,
        )
    return ClientCredentials(client_id, secret_value, auth, RegistrationMode.PRE_REGISTERED)


async def read_secret_key(
    kube: Kube, namespace: str, name: str, key: str, what: str, reason: str
) -> str:
    secret = await kube.get(core_path("secrets", namespace, name))
    value = children.decode_data(secret).get(key) if secret else None
    if not value:
        missing = "was not found" if secret is None else f"has no key {key}"
        raise OAuthError(reason, f"Secret {name} ({what}) {missing}", retryable=True)
    return value


@dataclass
class Registrar:
    """Dynamic Client Registration for one gateway, idempotent across restarts and races."""

    kube: Kube
    http: httpx.AsyncClient
    events: EventSink

    async def ensure(
        self,
        body: JSON,
        spec: MCPGatewaySpec,
        found: Discovery,
        redirect_uri: str,
        initial_access_token: str | None,
        now: datetime,
    ) -> ClientCredentials:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        path = core_path("secrets", namespace, children.registration_secret_name(name))
        secret = await self.kube.get(path)
        record = children.read_registration_record(secret)
        server = found.authorization_server
        auth = negotiate_auth_method(server, spec.oauth.registration.token_endpoint_auth_method)
        scopes = requested_scopes(spec, found)
        fingerprint = registration_fingerprint(server.issuer, [redirect_uri], scopes, auth)
        current: JSON | None = record.get("registration")
        expiring = current is not None and secret_expiring(current, now)
        if current and current.get("fingerprint") == fingerprint and not expiring:
            await self._delete_pending(path, body, secret, record)
            return _credentials(current, children.consumer_secret_name(name))
        if current is not None and expiring:
            # Upstream ignores client_secret_expires_at; we replace the client before its
            # secret stops working (the old registration is deleted once the new one is kept).
            await self.events.normal(
                body,
                "ClientSecretExpiring",
                f"The secret of client {current['clientId']} expires soon; registering anew",
            )

        intent = record.get("intent")
        if intent:
            # An earlier attempt recorded its intent and never persisted an answer: the
            # process died while the request was in flight or before the write. The AS may
            # hold a client we do not know; say so, naming it, and register anew.
            await self.events.warn(
                body,
                "PossibleOrphanedRegistration",
                f"A registration named {intent['clientName']!r} may exist at {intent['issuer']} "
                "without its credentials having been stored; delete it there if present",
            )
            record.setdefault("possibleOrphans", []).append(
                {"clientName": intent["clientName"], "issuer": intent["issuer"]}
            )
        attempt = int(record.get("attempts", 0)) + 1
        base = spec.oauth.registration.client_name or f"mcpgw {namespace}/{name}"
        client_name = f"{base} [{meta['uid'][:8]}-{attempt}]"
        record["attempts"] = attempt
        record["intent"] = {
            "clientName": client_name,
            "issuer": server.issuer,
            "fingerprint": fingerprint,
            "startedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        secret = await self._write(path, body, secret, record)

        failpoint("before-registration-request")
        request = RegistrationRequest(
            client_name=client_name,
            redirect_uris=(redirect_uri,),
            scopes=tuple(scopes),
            token_endpoint_auth_method=auth,
        )
        try:
            registered = await register_client(
                self.http, server, request, initial_access_token=initial_access_token
            )
        except OAuthError as exc:
            if not exc.retryable:
                # A definite refusal: no client exists, so the intent is void.
                record["intent"] = None
                await self._write(path, body, secret, record)
            if current and secret_expiring(current, now, margin=0):
                raise OAuthError(
                    Reason.CLIENT_SECRET_EXPIRED,
                    f"The secret of client {current['clientId']} has expired and registering a "
                    f"new client failed: {exc.message}",
                    retryable=exc.retryable,
                ) from exc
            raise
        failpoint("after-registration-response")

        if current:
            record.setdefault("pendingDeletion", []).append(current)
        record["intent"] = None
        record["registration"] = {
            "clientId": registered.client_id,
            "clientSecret": registered.client_secret,
            "clientName": client_name,
            "issuer": server.issuer,
            "authMethod": auth,
            "fingerprint": fingerprint,
            "issuedAt": registered.client_id_issued_at,
            "secretExpiresAt": registered.client_secret_expires_at,
            "registrationAccessToken": registered.registration_access_token,
            "registrationClientURI": registered.registration_client_uri,
            "redirectURIs": list(registered.redirect_uris) or [redirect_uri],
        }
        secret = await self._write(path, body, secret, record)
        await self._delete_pending(path, body, secret, record)
        return _credentials(record["registration"], children.consumer_secret_name(name))

    async def _write(self, path: str, body: JSON, secret: JSON | None, record: JSON) -> JSON:
        desired = children.registration_secret(body, record)
        try:
            if secret is None:
                return await self.kube.create(path.rsplit("/", 1)[0], desired)
            desired["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
            return await self.kube.replace(path, desired)
        except KubeError as exc:
            if exc.conflict:
                raise RegistrationBusy("the registration record changed underneath") from exc
            raise

    async def _delete_pending(
        self, path: str, body: JSON, secret: JSON | None, record: JSON
    ) -> None:
        pending = record.get("pendingDeletion") or []
        if not pending or secret is None:
            return
        remaining = []
        for old in pending:
            if not await self.delete_at_server(old):
                remaining.append(old)
        record["pendingDeletion"] = remaining
        if len(remaining) != len(pending):
            await self._write(path, body, secret, record)

    async def delete_at_server(self, registration: JSON) -> bool:
        """RFC 7592 DELETE; True when the AS no longer has the client (deleted or gone)."""
        uri = registration.get("registrationClientURI")
        token = registration.get("registrationAccessToken")
        if not uri or not token:
            return True
        try:
            await delete_registration(self.http, uri, token)
        except OAuthError:
            return False
        return True


def _credentials(reg: JSON, secret_name: str) -> ClientCredentials:
    return ClientCredentials(
        client_id=reg["clientId"],
        client_secret=reg.get("clientSecret"),
        auth_method=reg["authMethod"],
        mode=RegistrationMode.DYNAMIC,
        client_name=reg.get("clientName"),
        issued_at=reg.get("issuedAt"),
        secret_expires_at=reg.get("secretExpiresAt"),
        fingerprint=reg.get("fingerprint"),
        secret_name=secret_name,
        redirect_uris=tuple(reg["redirectURIs"]) if reg.get("redirectURIs") else None,
    )
