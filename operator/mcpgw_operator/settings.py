"""Operator configuration from the environment (prefix MCPGW_), read once."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_NAMESPACE = "mcpgw-system"


def _own_namespace() -> str:
    # The chart passes the pod's namespace through the downward API as POD_NAMESPACE.
    return os.environ.get("POD_NAMESPACE") or DEFAULT_NAMESPACE


def _default_resources() -> dict[str, Any]:
    return {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}}


class OperatorSettings(BaseSettings):
    """What the Helm chart (or `make dev-up`) hands the operator.

    The callback_* names match the callback service's own MCPGW_CALLBACK_* variables where both
    mean the same thing (public URL, Redis URL, replicas, key dir, auth mode), so one environment
    file can configure both components consistently.
    """

    model_config = SettingsConfigDict(env_prefix="MCPGW_", extra="ignore")

    callback_public_url: str = Field(
        "http://127.0.0.1:18080",
        description="Public base URL of the callback service; the redirect URI derives from it.",
    )
    callback_path: str = "/oauth/callback"
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty means cluster-wide."
    )
    http_timeout_seconds: float = 10.0
    discovery_cache_seconds: float = 300.0
    resync_seconds: float = 300.0
    timer_seconds: float = 10.0
    delete_attempts: int = Field(5, ge=1, description="RFC 7592 DELETE attempts before giving up.")
    refresh_before_seconds: float = Field(
        60.0, ge=0, description="Refresh an access token this long before it expires."
    )
    refresh_retry_seconds: float = Field(
        10.0, gt=0, description="First delay after an ambiguous refresh failure (doubles)."
    )
    refresh_retry_max_seconds: float = Field(300.0, gt=0)
    refresh_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a refresh in progress holds its lease on a token Secret; "
        "longer than the token endpoint timeout.",
    )
    failpoint: str = Field(
        "",
        description="Testing only: exit the process at a named point to prove crash safety "
        "(before-registration-request, after-registration-response).",
    )

    # The callback service the operator runs (Deployment, Service, HMAC key-ring Secret).
    callback_manage: bool = Field(
        True,
        description="Create and repair the callback objects; false only reports their health.",
    )
    callback_namespace: str = Field(default_factory=_own_namespace)
    callback_name: str = Field(
        "mcpgw-callback",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$",
        description="Name of the Deployment and Service, and prefix of the key Secret.",
    )
    callback_image: str = Field("mcpgw:0.1.0", description="The project image (the chart sets it).")
    callback_image_pull_policy: str = Field(
        "IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$"
    )
    callback_replicas: int = Field(2, ge=0, le=100)
    callback_resources: dict[str, Any] = Field(default_factory=_default_resources)
    callback_service_account: str = "mcpgw-callback"
    callback_port: int = Field(8080, ge=1024, le=65535, description="Container port.")
    # A URL with a password belongs in callback_redis_url_secret: this one is copied into the
    # Deployment's spec, which many more people can read than Secrets.
    callback_redis_url: str = Field("", description="Shared Redis; empty means none configured.")
    callback_redis_url_secret: str = Field(
        "", description="Secret (in the callback namespace) holding the Redis URL with password."
    )
    callback_redis_url_secret_key: str = "url"  # noqa: S105 - a key name, not a password
    callback_redis_ca_secret: str = Field(
        "", description="Secret with the CA that signed a TLS (rediss://) Redis's certificate."
    )
    callback_redis_ca_secret_key: str = "ca.crt"  # noqa: S105 - a key name, not a secret
    callback_state_ttl_seconds: int = Field(300, ge=30, le=3600)
    callback_auth_mode: str = Field("proxy-header", pattern=r"^(proxy-header|dev-insecure)$")
    callback_user_header: str = "X-Forwarded-User"
    callback_trusted_proxies: str = Field("", description="Comma-separated CIDRs.")
    callback_key_dir: str = "/etc/mcpgw/state-keys"
    callback_key_secret: str = Field("", description="Key-ring Secret; default <name>-state-keys.")
    callback_health_url: str = Field(
        "", description="Base URL where the operator reaches the service; default its Service."
    )
    callback_health_timeout_seconds: float = Field(2.0, gt=0, le=30)
    callback_infra_seconds: float = Field(30.0, gt=0, description="Callback reconcile interval.")

    @property
    def redirect_uri(self) -> str:
        return self.callback_public_url.rstrip("/") + self.callback_path

    @property
    def key_secret_name(self) -> str:
        return self.callback_key_secret or f"{self.callback_name}-state-keys"

    @property
    def redis_configured(self) -> bool:
        return bool(self.callback_redis_url or self.callback_redis_url_secret)

    @property
    def health_base_url(self) -> str:
        default = f"http://{self.callback_name}.{self.callback_namespace}.svc:80"
        return (self.callback_health_url or default).rstrip("/")


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
