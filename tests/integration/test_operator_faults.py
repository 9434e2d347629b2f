"""Faulty authorization servers: each fault gives Ready=False with its own reason and a stable,
redacted message, and retries back off visibly in status instead of hot-looping.

Faults the real peer cannot produce come from a scripted fake AS (tests/support/fake_as.py);
"no registration endpoint" is the real peer with DCR disabled.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import gateways as gw
from tests.support.control_plane import ControlPlane
from tests.support.fake_as import FakeAS, Route, as_metadata, serve_fake_as
from tests.support.oidc_peer import start_oidc_peer
from tests.support.processes import ManagedProcess, free_port
from tests.support.secret_scan import assert_no_secret_leaked
from tests.support.user_secrets import put_secret

pytestmark = pytest.mark.integration
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"
HTTP_TIMEOUT = 1.0
SLOW = 4 * HTTP_TIMEOUT


@dataclass(frozen=True)
class Fault:
    name: str
    reason: str
    message: str  # a fragment the Ready message must carry
    tenant: str | None = None  # the fake AS tenant, to count the requests it received


FAULTS = [
    Fault("unreachable", "AuthorizationServerUnreachable", "connection refused"),
    Fault("not-found", "DiscoveryFailed", "(HTTP 404", "missing"),
    Fault("server-error", "AuthorizationServerError", "(HTTP 500)", "broken"),
    Fault("html", "MetadataInvalid", "HTML (HTTP 200), not JSON", "html"),
    Fault("malformed-json", "MetadataInvalid", "malformed JSON (HTTP 200)", "garbled"),
    Fault("wrong-issuer", "IssuerMismatch", "issuer", "imposter"),
    Fault("slow", "AuthorizationServerUnreachable", "timed out", "slow"),
    Fault("no-s256", "PKCEUnsupported", "S256", "plain-only"),
    Fault("dcr-rejected", "RegistrationRejected", "invalid_client_metadata", "picky"),
    Fault("no-registration-endpoint", "RegistrationUnsupported", "Dynamic Client Registration"),
]


def _script(fake: FakeAS, iat: str) -> dict[str, str]:
    """Set up every fake tenant; returns the issuer each gateway is pointed at."""
    fake.route("GET", fake.metadata_path("broken"), Route(500, b"upstream exploded"))
    fake.route(
        "GET",
        fake.metadata_path("html"),
        Route(200, b"<html><body>Sign in</body></html>", "text/html; charset=utf-8"),
    )
    fake.route("GET", fake.metadata_path("garbled"), Route(200, b'{"issuer": "http://x",'))
    fake.json_route(
        "GET",
        fake.metadata_path("imposter"),
        as_metadata("http://127.0.0.1:1/someone-else"),
    )
    fake.route("GET", fake.metadata_path("slow"), Route(200, b"{}", delay=SLOW))
    fake.serve_metadata("plain-only", code_challenge_methods_supported=["plain"])
    picky = fake.serve_metadata("picky")
    # The AS echoes the initial access token in its error; the operator must redact it.
    fake.json_route(
        "POST",
        "/picky/reg",
        {"error": "invalid_client_metadata", "error_description": f"not for you, {iat}"},
        status=400,
    )
    return {
        "unreachable": f"http://127.0.0.1:{free_port()}/nobody",
        "not-found": fake.issuer("missing"),
        "server-error": fake.issuer("broken"),
        "html": fake.issuer("html"),
        "malformed-json": fake.issuer("garbled"),
        "wrong-issuer": fake.issuer("imposter"),
        "slow": fake.issuer("slow"),
        "no-s256": fake.issuer("plain-only"),
        "dcr-rejected": picky,
    }


def _requests_for(fake: FakeAS, tenant: str) -> int:
    """Requests about one tenant: its three metadata URLs and anything under its path."""
    return sum(
        fake.count(prefix)
        for prefix in (
            f"/{tenant}",
            f"/.well-known/oauth-authorization-server/{tenant}",
            f"/.well-known/openid-configuration/{tenant}",
        )
    )


def _snapshot(cp: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    found = {}
    for fault in FAULTS:
        body = gw.get(cp, "mcpgateway", fault.name, namespace)
        assert body is not None
        ready = gw.condition(body, "Ready") or {}
        found[fault.name] = {"ready": ready, "retry": (body.get("status") or {}).get("retry")}
    return found


def test_faults_report_their_reason_and_back_off(
    control_plane: ControlPlane,
    namespace: str,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    operator = run_operator(MCPGW_HTTP_TIMEOUT_SECONDS=str(HTTP_TIMEOUT))
    iat = "iat-" + secrets.token_urlsafe(24)
    put_secret(control_plane, namespace, "iat", {"token": iat})
    with serve_fake_as() as fake, start_oidc_peer(dcr="disabled", issuer_path="/closed") as closed:
        issuers = {**_script(fake, iat), "no-registration-endpoint": closed.issuer}
        for fault in FAULTS:
            registration = {"initialAccessTokenRef": {"name": "iat"}} if fault.tenant else {}
            gw.apply(
                control_plane,
                gw.make_gateway(
                    fault.name,
                    namespace,
                    UNUSED_MCP_URL,
                    oauth={"issuer": issuers[fault.name], "registration": registration},
                ),
            )
        for fault in FAULTS:
            body = gw.wait_for_condition(
                control_plane, fault.name, namespace, "Ready", "False", reason=fault.reason
            )
            message = (gw.condition(body, "Ready") or {})["message"]
            assert fault.message in message, f"{fault.name}: {message}"
        first = _snapshot(control_plane, namespace)
        started = time.monotonic()

        # Two more attempts each: the first after 5 s, the next 10 s later (exponential backoff).
        def retried_twice() -> bool:
            now = _snapshot(control_plane, namespace)
            return all(
                now[n]["retry"]["attempts"] >= first[n]["retry"]["attempts"] + 2 for n in now
            )

        gw.wait_until(retried_twice, timeout=40, what="every faulty gateway to retry twice")
        elapsed = time.monotonic() - started
        second = _snapshot(control_plane, namespace)
        requests = {f.name: _requests_for(fake, f.tenant) for f in FAULTS if f.tenant}

    assert operator.alive(), "the operator must survive every fault"
    for fault in FAULTS:
        before, after = first[fault.name], second[fault.name]
        # Same reason, same message, no flapping: the message carries no timestamps or IDs.
        assert after["ready"]["reason"] == fault.reason
        assert after["ready"]["message"] == before["ready"]["message"], fault.name
        assert after["ready"]["lastTransitionTime"] == before["ready"]["lastTransitionTime"]
        assert after["retry"]["nextRetryAt"] > before["retry"]["nextRetryAt"]
        assert after["retry"]["lastErrorReason"] == fault.reason
        # Backoff, not a hot loop: a handful of attempts over the whole run.
        assert after["retry"]["attempts"] <= 4, (fault.name, after["retry"], elapsed)
    # Two retries cannot both come sooner than 5 s + 10 s after the first failure.
    assert elapsed >= 10, elapsed
    for name, count in requests.items():
        # Each attempt fetches at most the three metadata URLs (plus one registration POST).
        attempts = second[name]["retry"]["attempts"] + 1
        assert count <= 3 * attempts, (name, count, attempts)
    assert_no_secret_leaked(control_plane, namespace, [operator.log_path], extra=[iat])
