"""Steps the scenarios share, written against the `Cluster` interface only: bounded waits on
conditions, and the headless browser leg through the callback service."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.e2e.backends import JSON, Cluster
from tests.support.oidc_login import complete_authorization

WAIT: Final = 60.0
HTTP_TIMEOUT: Final = httpx.Timeout(15.0)
JSON_ACCEPT: Final = {"accept": "application/json"}
BINDING_COOKIE: Final = "mcpgw_flow"  # the callback service's default cookie name


def condition(body: JSON | None, kind: str) -> JSON | None:
    for cond in ((body or {}).get("status") or {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return None


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_condition(
    cluster: Cluster,
    name: str,
    namespace: str,
    kind: str,
    status: str,
    *,
    reason: str | None = None,
    timeout: float = WAIT,
) -> JSON:
    """Poll the gateway until the condition has that status (and reason); returns the body."""
    deadline = time.monotonic() + timeout
    last: JSON | None = None
    while time.monotonic() < deadline:
        last = cluster.get("mcpgateway", name, namespace)
        cond = condition(last, kind)
        if cond and cond["status"] == status and reason in (None, cond["reason"]):
            assert last is not None
            return last
        time.sleep(0.3)
    raise AssertionError(
        f"{namespace}/{name}: {kind} never became {status}/{reason} in {timeout:.0f} s; "
        f"last status: {json.dumps((last or {}).get('status'), indent=1)}"
    )


def apply_registered(cluster: Cluster, name: str, namespace: str) -> JSON:
    """Apply a gateway this cluster can serve and wait until its client is registered."""
    cluster.apply(cluster.make_gateway(name, namespace))
    return wait_for_condition(cluster, name, namespace, "Registered", "True")


@dataclass(frozen=True)
class Authorization:
    """What one completed browser flow left behind (the code is kept for leak checks only)."""

    secret_name: str
    callback_url: str
    code: str


def authorize_through_callback(
    cluster: Cluster, name: str, namespace: str, user: str
) -> Authorization:
    """The browser leg: start at the callback's authorize endpoint as `user` (the trusted
    header), log in and consent at the peer, then follow the redirect back with the same
    cookie jar. On `local` the flow starts on replica 1 and the peer sends the browser to the
    public URL, replica 2."""
    with httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False) as browser:
        start = browser.get(
            f"{cluster.start_url}/oauth/authorize/{namespace}/{name}",
            headers={cluster.user_header: user},
        )
        assert start.status_code == 302, start.text
        assert BINDING_COOKIE in browser.cookies, "no browser-binding cookie was set"
        back = complete_authorization(start.headers["location"], username=user)
        assert back.startswith(f"{cluster.public_url}/oauth/callback"), urlsplit(back).path
        done = browser.get(back, headers=JSON_ACCEPT)
        assert done.status_code == 200, done.text
        body = done.json()
    assert body["status"] == "Authorized", body
    assert body["user"] == user
    code = parse_qs(urlsplit(back).query)["code"][0]
    return Authorization(secret_name=str(body["secret"]), callback_url=back, code=code)


def token_grants(cluster: Cluster, grant_type: str) -> int:
    return cluster.peer_stats()["token_grants"].get(grant_type, 0)
