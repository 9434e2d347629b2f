"""`make dev-up` / `make dev-down`: the local environment as background processes.

Starts the control plane (etcd, kube-apiserver, kube-controller-manager), Redis, the demo
authorization server, the operator, one callback replica and a demo MCP server; writes
`.dev/kubeconfig` and `.dev/env`, and records every pid in `.dev/pids.json` so `dev-down`
stops exactly those processes and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.control_plane import ControlPlane, find_assets  # noqa: E402
from tests.support.dev_stack import start_stack  # noqa: E402
from tests.support.processes import (  # noqa: E402
    ManagedProcess,
    SetupError,
    ensure_port_free,
    port_open,
    stop_pid,
)

# MCPGW_DEV_DIR moves the state folder (tests use a temporary one).
DEV = Path(os.environ.get("MCPGW_DEV_DIR", REPO / ".dev"))
PIDS = DEV / "pids.json"
PEER_DIR = REPO / "tests" / "peers" / "oidc"


def _port(name: str, default: int) -> int:
    raw = os.environ.get(f"MCPGW_DEV_{name}_PORT", str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SetupError(f"MCPGW_DEV_{name}_PORT={raw!r} is not a port number")
    return int(raw)


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def _recorded() -> list[dict[str, object]]:
    if not PIDS.exists():
        return []
    return list(json.loads(PIDS.read_text()))


def _alive(entry: dict[str, object]) -> bool:
    pid = int(str(entry["pid"]))
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return False
    return str(entry["match"]) in cmdline


def _record(processes: list[tuple[ManagedProcess, str]]) -> None:
    entries = [{"name": p.name, "pid": p.pid, "match": match} for p, match in processes]
    PIDS.write_text(json.dumps(entries, indent=2))


def down() -> int:
    entries = _recorded()
    if not entries:
        _say("nothing recorded in .dev/pids.json; nothing to stop")
        return 0
    for entry in reversed(entries):
        stopped = stop_pid(int(str(entry["pid"])), str(entry["match"]))
        _say(f"{entry['name']} (pid {entry['pid']}): {'stopped' if stopped else 'not running'}")
    PIDS.unlink()
    return 0


def _start_redis(port: int) -> ManagedProcess:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SetupError(
            "redis-server is not installed; run `make deps` (or apt-get install redis-server)"
        )
    ensure_port_free(port, "Redis", "stop it or set MCPGW_DEV_REDIS_PORT")
    proc = ManagedProcess(
        name="redis",
        argv=[
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        log_path=DEV / "logs" / "redis.log",
        detach=True,
    ).start()
    proc.wait_ready(lambda: port_open(port), timeout=15)
    return proc


def _start_oidc(port: int) -> tuple[ManagedProcess, str]:
    node = shutil.which("node")
    if node is None:
        raise SetupError(
            "node is not installed; run `make deps` (the demo authorization server needs Node.js)"
        )
    if not (PEER_DIR / "node_modules").exists():
        raise SetupError(
            f"{PEER_DIR}/node_modules is missing; run `make deps` (npm ci in that folder)"
        )
    ensure_port_free(port, "the demo authorization server", "stop it or set MCPGW_DEV_OIDC_PORT")
    issuer = f"http://127.0.0.1:{port}/demo"
    env = {
        **os.environ,
        "PORT": str(port),
        "OIDC_PEER_HOST": "127.0.0.1",
        "OIDC_PEER_ISSUER_PATH": "/demo",
    }
    proc = ManagedProcess(
        name="oidc-provider",
        argv=[node, str(PEER_DIR / "server.mjs")],
        log_path=DEV / "logs" / "oidc-provider.log",
        env=env,
        cwd=PEER_DIR,
        detach=True,
    ).start()
    proc.wait_ready(lambda: port_open(port), timeout=30)
    return proc, issuer


def up() -> int:
    entries = _recorded()
    if entries and all(_alive(e) for e in entries):
        _say("already running; nothing started")
        _print_usage()
        return 0
    if entries:
        _say("some recorded processes have died; stopping the rest and starting again")
        down()
    DEV.mkdir(exist_ok=True)
    ports = {
        "APISERVER": _port("APISERVER", 16443),
        "ETCD": _port("ETCD", 12379),
        "REDIS": _port("REDIS", 16379),
        "OIDC": _port("OIDC", 19000),
        "CALLBACK": _port("CALLBACK", 18080),
        "OPERATOR": _port("OPERATOR", 18081),
        "MCP": _port("MCP", 18090),
    }
    # Check every port before starting anything, so a clash leaves nothing half-started.
    for name, port in ports.items():
        ensure_port_free(port, f"the dev {name.lower()}", f"stop it or set MCPGW_DEV_{name}_PORT")
    started: list[tuple[ManagedProcess, str]] = []
    cp: ControlPlane | None = None
    try:
        _say("control plane: locating or building kube-apiserver, etcd, kubectl")
        cp = ControlPlane(
            workdir=DEV / "control-plane",
            assets=find_assets(),
            apiserver_port=ports["APISERVER"],
            etcd_port=ports["ETCD"],
            detach=True,
        )
        cp.start()
        started += [(p, str(p.argv[0])) for p in cp.processes]
        shutil.copy(cp.admin_kubeconfig, DEV / "kubeconfig")
        _say(f"kube-apiserver ready at {cp.server}")
        redis_port = ports["REDIS"]
        started.append((_start_redis(redis_port), f"127.0.0.1:{redis_port}"))
        _say(f"redis ready at 127.0.0.1:{redis_port}")
        oidc, issuer = _start_oidc(ports["OIDC"])
        started.append((oidc, "server.mjs"))
        _say(f"demo authorization server ready, issuer {issuer}")
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        _say("operator and callback service: starting under their own ServiceAccounts")
        stack = start_stack(cp, DEV, redis_url=redis_url, issuer=issuer, ports=ports)
        started += stack.processes
        _say(f"operator running; callback service at {stack.callback_url}")
        _say(f"demo MCP server (OAuth-protected) at {stack.mcp_url}")
    except SetupError:
        for proc, _ in reversed(started):
            proc.stop()
        if cp is not None:
            cp.stop()
        raise
    _record(started)
    env = {
        "KUBECONFIG": str(DEV / "kubeconfig"),
        "REDIS_URL": redis_url,
        "OAUTH_ISSUER": issuer,
        **stack.env,
        "PATH": f"{cp.assets}:$PATH",
    }
    (DEV / "env").write_text("".join(f'export {k}="{v}"\n' for k, v in env.items()))
    _print_usage()
    return 0


def _print_usage() -> None:
    print(
        "\nThe local environment is up. Use it with:\n"
        "  source .dev/env\n"
        "  kubectl version\n"
        "  kubectl get mcpgateways -A\n"
        "Logs are in .dev/logs and .dev/control-plane; stop everything with `make dev-down`.",
        flush=True,
    )


COMMANDS: dict[str, Callable[[], int]] = {"up": up, "down": down}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        print("usage: hack/dev.py up|down", file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[1]]()
    except SetupError as exc:
        print(f"[dev] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
