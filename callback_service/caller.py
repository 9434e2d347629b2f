"""Who is asking: the user named by a trusted auth proxy, or the fixed user of dev mode."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address
from typing import Final

from callback_service.errors import ServiceError
from callback_service.settings import AuthMode, CallbackSettings
from mcpgw_core.api import Reason

MAX_USER_LENGTH: Final = 256


def identify_caller(
    settings: CallbackSettings, peer_address: str | None, headers: Mapping[str, str]
) -> str:
    """The caller's user name, or `ServiceError` 401 with a reason saying what was missing."""
    if settings.auth_mode is AuthMode.DEV_INSECURE:
        return settings.dev_user
    if not _is_trusted(settings, peer_address):
        # Anyone can send the header; only the proxy's connection makes it true.
        raise ServiceError(
            401,
            Reason.UNTRUSTED_PROXY,
            "the request did not come through a trusted authentication proxy",
        )
    user = headers.get(settings.user_header, "").strip()
    if not user:
        raise ServiceError(
            401,
            Reason.UNAUTHENTICATED,
            f"the authentication proxy sent no {settings.user_header} header",
        )
    if len(user) > MAX_USER_LENGTH or not user.isprintable():
        raise ServiceError(
            401, Reason.UNAUTHENTICATED, "the user name from the proxy is not usable"
        )
    return user


def _is_trusted(settings: CallbackSettings, peer_address: str | None) -> bool:
    if not peer_address:
        return False
    try:
        address = ip_address(peer_address)
    except ValueError:
        return False
    return any(address in network for network in settings.trusted_proxies)
