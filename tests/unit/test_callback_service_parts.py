"""Callback service settings, token Secret builders, probes, metrics and the status endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from callback_service.app import create_app
from callback_service.resources import KeySource
from callback_service.settings import AuthMode, CallbackSettings
from mcpgw_core.api import Reason
from mcpgw_core.keyring import KeyRing, KeyRingError, encode_key, generate_key
from mcpgw_core.token_secrets import read_token_set, token_secret, token_secret_name
from mcpgw_core.tokens import TokenSet
from tests.support.callback_fakes import CLIENT_SECRET, USER_HEADER, Harness, make_settings

ALICE = {USER_HEADER: "alice@example.test"}


# --- settings --------------------------------------------------------------------------------


def test_dev_mode_refuses_more_than_one_replica() -> None:
    with pytest.raises(ValidationError, match="refuses to run with more than one replica"):
        CallbackSettings(auth_mode=AuthMode.DEV_INSECURE, replicas=2)
    assert CallbackSettings(auth_mode=AuthMode.DEV_INSECURE, replicas=1).replicas == 1


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPGW_CALLBACK_TRUSTED_PROXIES", "10.1.0.0/16, ::1/128")
    monkeypatch.setenv("MCPGW_CALLBACK_PUBLIC_URL", "https://cb.example.test/")
    monkeypatch.setenv("MCPGW_CALLBACK_STATE_TTL_SECONDS", "120")
    settings = CallbackSettings()
    assert settings.trusted_proxies == [ip_network("10.1.0.0/16"), ip_network("::1/128")]
    assert settings.redirect_uri == "https://cb.example.test/oauth/callback"
    assert settings.secure_cookie
    assert settings.state_ttl_seconds == 120
    assert settings.auth_mode is AuthMode.PROXY_HEADER  # authentication is on by default


def test_create_app_reads_no_environment_at_import_or_build() -> None:
    app = create_app(make_settings())
    assert not hasattr(app.state, "resources")


# --- token Secret ----------------------------------------------------------------------------


def test_token_secret_name_is_deterministic_short_and_valid() -> None:
    assert token_secret_name("gh", "alice") == token_secret_name("gh", "alice")
    assert token_secret_name("gh", "alice") != token_secret_name("gh", "bob")
    long = token_secret_name("a" * 240 + "-b", "alice")
    assert len(long) <= 253
    assert "--" not in long.replace("-oauth-token-", "")


def test_token_secret_round_trips() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    tokens = TokenSet(
        access_token="access-1",
        refresh_token="refresh-1",
        scope="mcp",
        expires_at=now,
        obtained_at=now,
    )
    manifest = token_secret(
        namespace="ns", gateway="gh", gateway_uid="u1", user="alice", tokens=tokens
    )
    assert "id_token" not in manifest["data"]
    assert read_token_set(manifest) == tokens
    assert "access-1" not in repr(manifest["metadata"])


# --- probes, metrics, status -----------------------------------------------------------------


async def test_ready_when_redis_answers_and_keys_are_loaded() -> None:
    harness = Harness(make_settings())
    async with harness.client() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        harness.store.down = True
        unready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["keyIDs"] == ["ka"]
    assert unready.status_code == 503
    assert unready.json()["problems"][0]["reason"] == Reason.STATE_STORE_UNREACHABLE


async def test_unready_without_keys(tmp_path: Path) -> None:
    harness = Harness(make_settings())
    app = harness.build()
    async with app.router.lifespan_context(app):
        assert harness.resources is not None
        harness.resources.keys = KeySource(tmp_path / "absent")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://cb.test") as http:
            ready = await http.get("/readyz")
            authorize = await http.get("/oauth/authorize/a/b")
    assert ready.status_code == 503
    assert ready.json()["problems"][0]["reason"] == Reason.HMAC_KEY_MISSING
    assert authorize.status_code == 401  # authentication still comes first


async def test_keys_appear_without_a_restart(tmp_path: Path) -> None:
    source = KeySource(tmp_path)
    with pytest.raises(KeyRingError, match="no key"):
        source.current()
    (tmp_path / "k1").write_text(encode_key(generate_key()))
    assert source.current().kids == ("k1",)
    assert isinstance(source.current(), KeyRing)


async def test_metrics_exposes_the_counters() -> None:
    harness = Harness(make_settings())
    async with harness.client() as http:
        await http.get("/oauth/authorize/team-a/none", headers=ALICE)
        text = (await http.get("/metrics")).text
    assert 'mcpgw_callback_authorize_rejections_total{reason="GatewayNotFound"} 1.0' in text
    assert "mcpgw_callback_request_duration_seconds_bucket" in text
    assert 'route="/oauth/authorize/{namespace}/{name}"' in text


async def test_two_apps_have_separate_registries() -> None:
    first, second = Harness(make_settings()), Harness(make_settings())
    async with first.client() as a, second.client() as b:
        await a.get("/oauth/authorize/x/y", headers=ALICE)
        await b.get("/healthz")
    assert first.metric("mcpgw_callback_authorize_rejections_total", reason="GatewayNotFound") == 1
    assert second.metric("mcpgw_callback_authorize_rejections_total", reason="GatewayNotFound") == 0


async def test_status_shows_the_client_and_the_callers_authorization_without_secrets() -> None:
    harness = Harness(make_settings())
    harness.kube.add_gateway("team-a", "github")
    async with harness.client() as http:
        before = await http.get(
            "/oauth/status/team-a/github", headers={**ALICE, "accept": "application/json"}
        )
        anonymous = await http.get("/oauth/status/team-a/github")
    body = before.json()
    assert before.status_code == 200
    assert body["clientID"] == "client-github"
    assert body["authorized"] is False
    assert body["conditions"] == [{"type": "Registered", "status": "True", "reason": "R"}]
    assert CLIENT_SECRET not in before.text
    assert anonymous.status_code == 401
