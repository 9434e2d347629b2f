"""Operator configuration from the environment (prefix MCPGW_), read once."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """What the Helm chart (or `make dev-up`) hands the operator."""

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
    failpoint: str = Field(
        "",
        description="Testing only: exit the process at a named point to prove crash safety "
        "(before-registration-request, after-registration-response).",
    )

    @property
    def redirect_uri(self) -> str:
        return self.callback_public_url.rstrip("/") + self.callback_path


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
