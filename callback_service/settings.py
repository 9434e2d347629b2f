"""Callback service configuration from the environment (prefix MCPGW_CALLBACK_), read once."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_HEADER_NAME_PATTERN: Final = r"^[A-Za-z0-9-]{1,64}$"
_COOKIE_NAME_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"

Network = IPv4Network | IPv6Network


class AuthMode(StrEnum):
    """How the authorize and status endpoints learn who is asking (DESIGN.md sec. 5)."""

    PROXY_HEADER = "proxy-header"
    DEV_INSECURE = "dev-insecure"


class InsecureSettingsError(ValueError):
    """The settings would make the service unsafe; it refuses to start."""


class CallbackSettings(BaseSettings):
    """What the Helm chart, the operator's Deployment or `make dev-up` hands the service."""

    model_config = SettingsConfigDict(env_prefix="MCPGW_CALLBACK_", extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Shared state store.")
    redis_timeout_seconds: float = Field(2.0, gt=0, le=30)
    redis_key_prefix: str = Field("mcpgw:", min_length=1, max_length=64)
    redis_ca_file: Path | None = Field(
        None, description="CA bundle that signed a TLS (rediss://) Redis's certificate."
    )
    key_dir: Path = Field(
        Path("/etc/mcpgw/state-keys"),
        description="Mounted HMAC key-ring Secret (one file per key; see mcpgw_core.keyring).",
    )
    public_url: str = Field(
        "http://127.0.0.1:18080",
        description="Public base URL; the redirect URI is this plus callback_path.",
    )
    callback_path: str = "/oauth/callback"
    state_ttl_seconds: int = Field(300, ge=30, le=3600)
    gateway_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=60,
        description="How long the authorize endpoint reuses a gateway and its client Secret; 0 "
        "reads them on every request.",
    )
    link_ttl_seconds: int = Field(
        120, ge=10, le=900, description="Validity of an authorize link minted for a Kube user."
    )
    auth_mode: AuthMode = AuthMode.PROXY_HEADER
    user_header: str = Field("X-Forwarded-User", pattern=_HEADER_NAME_PATTERN)
    trusted_proxies: Annotated[list[Network], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of the auth proxies whose user header is believed; comma-separated.",
    )
    dev_user: str = Field("dev-user", min_length=1, max_length=256)
    replicas: int = Field(1, ge=1, description="Replicas of this Deployment (from the chart).")
    cookie_name: str = Field("mcpgw_flow", pattern=_COOKIE_NAME_PATTERN)
    kubeconfig: str | None = Field(None, description="Kubeconfig path; in-cluster when unset.")
    http_timeout_seconds: float = Field(10.0, gt=0, le=60)
    host: str = "127.0.0.1"
    port: int = Field(18080, ge=1, le=65535)
    log_level: str = "info"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return [ip_network(part.strip()) for part in value.split(",") if part.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
            raise ValueError("public_url must be an http(s) URL without query or fragment")
        return value.rstrip("/")

    @field_validator("callback_path")
    @classmethod
    def _check_callback_path(cls, value: str) -> str:
        if not value.startswith("/oauth/"):
            raise ValueError("callback_path must live under /oauth/ (the cookie's path)")
        return value

    @model_validator(mode="after")
    def _refuse_shared_dev_mode(self) -> CallbackSettings:
        # Without authentication any replica would start flows for anyone; with several replicas
        # that is a deployment, not a developer's laptop.
        if self.auth_mode is AuthMode.DEV_INSECURE and self.replicas > 1:
            raise InsecureSettingsError(
                "auth_mode dev-insecure refuses to run with more than one replica"
            )
        return self

    @property
    def redirect_uri(self) -> str:
        """The redirect URI the operator registers for every gateway."""
        return self.public_url + self.callback_path

    @property
    def secure_cookie(self) -> bool:
        """Cookies are Secure unless the public URL is plain http (local development)."""
        return self.public_url.startswith("https://")


@lru_cache
def get_settings() -> CallbackSettings:
    """The process-wide settings, read from the environment on first use."""
    return CallbackSettings()
