"""Operator scale benchmark: N gateways applied at once against one local oidc-provider.

Measures, on a fresh control plane of its own:
- time from applying N MCPGateways until all are Registered=True;
- API writes per gateway made by the operator's ServiceAccount, counted from the
  kube-apiserver audit log (one line per request; verbs create/update/patch/delete);
- API writes during an idle resync of all N (the operator restarted: its initial listing
  runs a reconcile pass for every gateway);
- the operator's resident memory (VmRSS) once all are registered.

Usage: .venv/bin/python benchmarks/operator_scale.py [--gateways 200] [--memory-gateways 1000]
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.accounts import service_account_kubeconfig  # noqa: E402
from tests.support.control_plane import ControlPlane, find_assets  # noqa: E402
from tests.support.oidc_peer import start_oidc_peer  # noqa: E402
from tests.support.operator_process import (  # noqa: E402
    OPERATOR_SA,
    SYSTEM_NAMESPACE,
    install_operator_rbac,
    start_operator,
)
from tests.support.processes import ManagedProcess  # noqa: E402

WRITE_VERBS = {"create", "update", "patch", "delete"}
OPERATOR_USER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{OPERATOR_SA}"


def audit_writes(
    log: Path, since_line: int, namespace: str = "bench"
) -> tuple[int, collections.Counter[str]]:
    """(lines read, operator writes in `namespace` by 'verb resource[/subresource]') after
    `since_line`. The one-time writes of the callback Deployment, Service and key Secret in the
    operator's own namespace are not per-gateway work and are left out."""
    counts: collections.Counter[str] = collections.Counter()
    lines = log.read_text().splitlines()
    for line in lines[since_line:]:
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete":
            continue
        if event["user"]["username"] != OPERATOR_USER or event["verb"] not in WRITE_VERBS:
            continue
        ref = event.get("objectRef", {})
        if ref.get("namespace") != namespace:
            continue
        resource = ref.get("resource", "?") + (
            "/" + ref["subresource"] if ref.get("subresource") else ""
        )
        counts[f"{event['verb']} {resource}"] += 1
    return len(lines), counts


def apply_gateways(
    cp: ControlPlane, namespace: str, issuer: str, count: int, start: int = 0
) -> None:
    items = [
        {
            "apiVersion": "mcpgw.dev/v1alpha1",
            "kind": "MCPGateway",
            "metadata": {"name": f"gw-{i:04d}", "namespace": namespace},
            "spec": {"url": f"https://mcp-{i}.example.test/mcp", "oauth": {"issuer": issuer}},
        }
        for i in range(start, start + count)
    ]
    result = cp.kubectl_run(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl apply failed: {result.stderr}")


def registered_count(cp: ControlPlane, namespace: str) -> int:
    result = cp.kubectl_run("get", "mcpgw", "-n", namespace, "-o", "json")
    items = json.loads(result.stdout)["items"]
    return sum(
        1
        for item in items
        for c in (item.get("status") or {}).get("conditions", [])
        if c["type"] == "Registered" and c["status"] == "True"
    )


def wait_registered(cp: ControlPlane, namespace: str, total: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        done = registered_count(cp, namespace)
        if done >= total:
            return time.monotonic() - start
        time.sleep(0.5)
    raise SystemExit(f"only {registered_count(cp, namespace)}/{total} registered after {timeout} s")


def rss_mib(proc: ManagedProcess) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--memory-gateways", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()
    # Stopped from outside (timeout, Ctrl-C): still stop the control plane and the operator.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    work = Path(tempfile.mkdtemp(prefix="mcpgw-bench-"))
    audit = work / "audit.log"
    cp = ControlPlane(workdir=work / "cp", assets=find_assets(), audit_log=audit).start()
    peer = start_oidc_peer(log_path=work / "oidc.log")
    operator: ManagedProcess | None = None
    try:
        install_operator_rbac(cp)
        cp.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
        cp.kubectl_run(
            "wait", "--for=condition=Established", "--timeout=60s", "crd/mcpgateways.mcpgw.dev"
        )
        kubeconfig = service_account_kubeconfig(
            cp, SYSTEM_NAMESPACE, OPERATOR_SA, work / "op.kubeconfig"
        )
        namespace = "bench"
        cp.kubectl_run("create", "namespace", namespace)
        operator = start_operator(kubeconfig, work / "operator.log", namespaces=[namespace])

        mark, _ = audit_writes(audit, 0)
        registrations_before = peer.stats()["registrations"]
        apply_gateways(cp, namespace, peer.issuer, args.gateways)
        elapsed = wait_registered(cp, namespace, args.gateways, timeout=300)
        time.sleep(3)  # let trailing writes (Events) land before counting
        mark, writes = audit_writes(audit, mark)
        total = sum(writes.values())
        print(f"{args.gateways} gateways Registered=True in {elapsed:.1f} s")
        print(f"operator API writes: {total} = {total / args.gateways:.2f} per gateway")
        for key, n in sorted(writes.items()):
            print(f"  {key:<28} {n:>6}  ({n / args.gateways:.2f}/gateway)")
        registrations = peer.stats()["registrations"]
        print(f"registrations at the AS: {registrations} (before: {registrations_before})")

        # Idle: nothing changes for a while (timer ticks), then a restart resyncs all.
        time.sleep(args.idle_seconds)
        mark, writes = audit_writes(audit, mark)
        print(f"idle {args.idle_seconds:.0f} s: operator API writes {sum(writes.values())}")
        operator.stop()
        operator = start_operator(kubeconfig, work / "operator-2.log", namespaces=[namespace])
        time.sleep(max(10.0, args.gateways / 20))
        mark, writes = audit_writes(audit, mark)
        total = sum(writes.values())
        print(f"resync after restart ({args.gateways} passes): operator API writes {total}")
        print(f"operator RSS with {args.gateways} gateways: {rss_mib(operator):.0f} MiB")

        if args.memory_gateways > args.gateways:
            extra = args.memory_gateways - args.gateways
            apply_gateways(cp, namespace, peer.issuer, extra, start=args.gateways)
            elapsed = wait_registered(cp, namespace, args.memory_gateways, timeout=600)
            time.sleep(5)
            print(
                f"{args.memory_gateways} gateways registered ({extra} more in {elapsed:.1f} s); "
                f"operator RSS {rss_mib(operator):.0f} MiB"
            )
    finally:
        if operator is not None:
            operator.stop()
        peer.stop()
        cp.stop()
    print(f"work files (logs, audit log): {work}")


if __name__ == "__main__":
    main()
