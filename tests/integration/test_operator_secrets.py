"""The Secrets a registered gateway owns: content, repair without re-registration, replacement
on a scope change, no writes while idle, and what `kubectl get mcpgateways` shows."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REDIRECT_URI
from tests.support import gateways as gw
from tests.support.audit import AuditLog
from tests.support.control_plane import ControlPlane
from tests.support.oidc_peer import OIDCPeer
from tests.support.processes import ManagedProcess
from tests.support.secret_scan import assert_no_secret_leaked

pytestmark = pytest.mark.integration
UNUSED_MCP_URL = "http://127.0.0.1:9/mcp"
# The consumer Secret's documented contract (README / API reference).
CONSUMER_KEYS = {
    "client_id",
    "client_secret",
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "redirect_uri",
    "token_endpoint_auth_method",
    "scope",
}


def _gateway(name: str, namespace: str, issuer: str, **spec: Any) -> dict[str, Any]:
    oauth = {"issuer": issuer, "scopes": ["mcp:tools"], **spec.pop("oauth", {})}
    return gw.make_gateway(name, namespace, UNUSED_MCP_URL, oauth=oauth, **spec)


def _registration_record(cp: ControlPlane, name: str, namespace: str) -> dict[str, Any]:
    data = gw.secret_data(cp, f"{name}-oauth-registration", namespace)
    assert data is not None
    record: dict[str, Any] = json.loads(data["registration.json"])
    return record


def test_consumer_secret_content_and_repair(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    # A short resync so an edited Secret (which raises no deletion event) is repaired quickly.
    operator = run_operator(MCPGW_RESYNC_SECONDS="3")
    template = {"labels": {"team": "payments"}, "annotations": {"example.com/owner": "sre"}}
    gw.apply(control_plane, _gateway("files", namespace, oidc_peer.issuer, secretTemplate=template))
    body = gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
    created = oidc_peer.stats()["registrations"]["created"]
    status = body["status"]
    assert status["client"]["secretName"] == "files-oauth-client"

    secret = gw.get(control_plane, "secret", "files-oauth-client", namespace)
    assert secret is not None
    data = gw.secret_data(control_plane, "files-oauth-client", namespace)
    assert data is not None
    assert set(data) == CONSUMER_KEYS
    assert data["client_id"] == status["client"]["clientID"]
    assert data["issuer"] == oidc_peer.issuer
    assert data["authorization_endpoint"] == status["discovery"]["authorizationEndpoint"]
    assert data["token_endpoint"] == status["discovery"]["tokenEndpoint"]
    assert data["redirect_uri"] == REDIRECT_URI
    assert data["token_endpoint_auth_method"] == "client_secret_basic"
    assert data["scope"] == "mcp:tools"
    # The secret is the one the AS issued (it stores only a digest).
    registered = oidc_peer.admin_client(data["client_id"])
    assert registered is not None
    digest = hashlib.sha256(data["client_secret"].encode()).hexdigest()
    assert registered["client_secret_sha256"] == digest
    meta = secret["metadata"]
    assert meta["labels"]["team"] == "payments"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "mcpgw-operator"
    assert meta["annotations"]["example.com/owner"] == "sre"
    [owner] = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "MCPGateway",
        "files",
        body["metadata"]["uid"],
        True,
    )

    # Deleted: rebuilt from the stored registration, with no new client at the AS.
    deleted = control_plane.kubectl_run("delete", "secret", "files-oauth-client", "-n", namespace)
    assert deleted.returncode == 0, deleted.stderr
    gw.wait_until(
        lambda: gw.secret_data(control_plane, "files-oauth-client", namespace) == data,
        timeout=20,
        what="the deleted consumer Secret to be rebuilt",
    )
    # Edited: put back at the next resync.
    patched = control_plane.kubectl_run(
        "patch", "secret", "files-oauth-client", "-n", namespace,
        "--type=merge", "-p", json.dumps({"stringData": {"client_id": "tampered"}}),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    gw.wait_until(
        lambda: gw.secret_data(control_plane, "files-oauth-client", namespace) == data,
        timeout=20,
        what="the edited consumer Secret to be repaired",
    )
    assert oidc_peer.stats()["registrations"]["created"] == created
    after = gw.get(control_plane, "mcpgateway", "files", namespace)
    assert after is not None
    assert after["status"]["client"]["clientID"] == data["client_id"]
    assert_no_secret_leaked(control_plane, namespace, [operator.log_path])


def test_scope_change_replaces_the_registration(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    operator = run_operator()
    gw.apply(control_plane, _gateway("files", namespace, oidc_peer.issuer))
    body = gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
    old_id = body["status"]["client"]["clientID"]
    old_fingerprint = body["status"]["client"]["fingerprint"]
    before = oidc_peer.stats()["registrations"]

    gw.apply(
        control_plane,
        _gateway(
            "files", namespace, oidc_peer.issuer, oauth={"scopes": ["mcp:tools", "mcp:resources"]}
        ),
    )

    def replaced() -> bool:
        now = gw.get(control_plane, "mcpgateway", "files", namespace) or {}
        status = now.get("status") or {}
        return (
            status.get("observedGeneration") == 2
            and (status.get("client") or {}).get("clientID") not in (None, old_id)
            and (gw.condition(now, "Registered") or {}).get("status") == "True"
        )

    gw.wait_until(replaced, timeout=30, what="a new registration for the new scopes")
    fresh = gw.get(control_plane, "mcpgateway", "files", namespace)
    assert fresh is not None
    new_id = fresh["status"]["client"]["clientID"]
    assert fresh["status"]["client"]["fingerprint"] != old_fingerprint
    assert oidc_peer.admin_client(old_id) is None  # deleted at the AS: no orphan
    registered = oidc_peer.admin_client(new_id)
    assert registered is not None
    assert set(registered["scope"].split()) == {"mcp:tools", "mcp:resources"}
    after = oidc_peer.stats()["registrations"]
    assert after["created"] == before["created"] + 1
    assert after["deleted"] == before["deleted"] + 1
    record = _registration_record(control_plane, "files", namespace)
    assert record["registration"]["clientId"] == new_id
    assert not record.get("pendingDeletion")
    assert not record.get("intent")
    data = gw.secret_data(control_plane, "files-oauth-client", namespace)
    assert data is not None
    assert data["client_id"] == new_id
    assert set(data["scope"].split()) == {"mcp:tools", "mcp:resources"}
    assert_no_secret_leaked(control_plane, namespace, [operator.log_path])


def _versions(cp: ControlPlane, namespace: str) -> dict[str, str]:
    found = {}
    for kind, name in [
        ("mcpgateway", "files"),
        ("secret", "files-oauth-client"),
        ("secret", "files-oauth-registration"),
    ]:
        obj = gw.get(cp, kind, name, namespace)
        assert obj is not None, f"{kind}/{name} is missing"
        found[f"{kind}/{name}"] = obj["metadata"]["resourceVersion"]
    return found


def test_idle_gateway_makes_no_writes(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    assert control_plane.audit_log is not None
    audit = AuditLog(control_plane.audit_log)
    # Timer ticks every 2 s and a full resync pass every 3 s: plenty of chances to write.
    run_operator(MCPGW_RESYNC_SECONDS="3")
    gw.apply(control_plane, _gateway("files", namespace, oidc_peer.issuer))
    gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
    time.sleep(2)  # let the Events and the first watch echoes settle
    versions = _versions(control_plane, namespace)
    mark = audit.mark()
    time.sleep(15)
    assert _versions(control_plane, namespace) == versions
    requests = audit.requests(since=mark, namespace=namespace)
    writes = [r for r in requests if r.is_write]
    assert writes == []
    # The passes did run (each reads the gateway), so the silence is not an idle operator.
    reads = [r for r in requests if r.verb == "get" and r.resource == "mcpgateways"]
    assert len(reads) >= 3, requests


def test_kubectl_get_shows_the_columns(
    control_plane: ControlPlane,
    namespace: str,
    oidc_peer: OIDCPeer,
    run_operator: Callable[..., ManagedProcess],
) -> None:
    run_operator()
    gw.apply(control_plane, _gateway("files", namespace, oidc_peer.issuer))
    body = gw.wait_for_condition(control_plane, "files", namespace, "Registered", "True")
    client_id = body["status"]["client"]["clientID"]
    ready = gw.condition(body, "Ready") or {}
    authorized = gw.condition(body, "Authorized") or {}
    # Nobody has authorized yet (and no callback service runs here): neither is True.
    assert ready["status"] != "True"
    assert authorized["status"] != "True"

    plain = control_plane.kubectl_run("get", "mcpgateways", "-n", namespace)
    assert plain.returncode == 0, plain.stderr
    header, row = plain.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "ISSUER", "CLIENT", "AUTHORIZED", "AGE"]
    assert row.split()[:5] == [
        "files",
        ready["status"],
        oidc_peer.issuer,
        client_id,
        authorized["status"],
    ]

    wide = control_plane.kubectl_run("get", "mcpgw", "files", "-n", namespace, "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    header, row = wide.stdout.splitlines()
    assert header.split()[-2:] == ["REASON", "MESSAGE"]
    assert f" {ready['reason']} " in row
    assert row.rstrip().endswith(ready["message"])
