"""Benchmark of the state layer: sequential flow create + consume against a local redis-server.

Each operation is what one authorization flow costs the state layer: PKCE pair, signed state,
`StateStore.create`, then at the callback `verify_state` and `StateStore.consume` (two Redis
round trips). `--store-only` leaves out PKCE and HMAC work to show Redis' share.

    .venv/bin/python -m benchmarks.state_layer --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from mcpgw_core.keyring import KeyRing, generate_key
from mcpgw_core.pkce import make_pkce_pair
from mcpgw_core.state import make_binding_value
from mcpgw_core.state_store import FlowRecord, StateStore
from tests.support.redis_server import start_redis

TTL = 300.0
GATEWAY = "team-a/github"
REDIRECT_URI = "https://callback.example/oauth/callback"


async def run(url: str, seconds: float, store_only: bool) -> tuple[list[float], float]:
    """Flows until `seconds` pass; returns per-flow latencies and the process CPU time used."""
    store = StateStore.from_url(url)
    ring = KeyRing([("k1", generate_key())])
    binding = make_binding_value()
    latencies: list[float] = []
    try:
        await store.ping()
        cpu_started = time.process_time()
        deadline = time.perf_counter() + seconds
        while (started := time.perf_counter()) < deadline:
            issued = ring.sign_state(gateway=GATEWAY, binding=binding, now=time.time())
            verifier = "v" * 64 if store_only else make_pkce_pair()[0]
            record = FlowRecord(
                nonce=issued.nonce,
                gateway=GATEWAY,
                user="alice@example.com",
                code_verifier=verifier,
                redirect_uri=REDIRECT_URI,
                client_id="client-1",
                created_at=issued.issued_at,
            )
            if store_only:
                started = time.perf_counter()
            await store.create(record, TTL)
            nonce = issued.nonce
            if not store_only:
                nonce = ring.verify_state(
                    issued.state, binding=binding, now=time.time(), max_age=TTL
                ).nonce
            await store.consume(nonce)
            latencies.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu_started
    finally:
        await store.aclose()
    return latencies, cpu


def report(label: str, latencies: list[float], seconds: float, cpu: float) -> None:
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{label}: {len(latencies)} flows in {seconds:g} s = {len(latencies) / seconds:,.0f}/s;"
        f" p50 {cuts[49] * 1e6:.0f} us, p99 {cuts[98] * 1e6:.0f} us per create+consume;"
        # Wall-clock figures suffer when other work shares the core; CPU per flow does not.
        f" client CPU {cpu / len(latencies) * 1e6:.0f} us per flow"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin this process to")
    parser.add_argument(
        "--redis-cpu",
        type=int,
        default=None,
        help="core to pin the started redis-server to (default: the benchmark's own core, so "
        "the whole flow runs on one core; give the other core to measure across cores)",
    )
    parser.add_argument("--store-only", action="store_true")
    args = parser.parse_args()

    os.sched_setaffinity(0, {args.cpu})
    server = None if args.redis_url else start_redis()
    url = args.redis_url or (server.url if server else "")
    try:
        if server is not None:
            # By default the whole flow, client and redis-server, runs on one core: on this
            # project's VMs a wake-up across cores costs more than the work of a round trip.
            redis_cpu = args.cpu if args.redis_cpu is None else args.redis_cpu
            os.sched_setaffinity(server.pid, {redis_cpu})
        latencies, cpu = asyncio.run(run(url, args.seconds, args.store_only))
    finally:
        if server is not None:
            server.stop()
    report("store only" if args.store_only else "state layer", latencies, args.seconds, cpu)


if __name__ == "__main__":
    main()
