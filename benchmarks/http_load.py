"""A lean HTTP/1.1 load generator, run as its own process by `benchmarks/callback_http.py`.

Why not httpx: at several hundred requests per second its per-request CPU cost would be
measured along with the server on a 2-core machine. This sends one GET at a time per keep-alive
connection over asyncio streams and reads the status line, headers and Content-Length body.

Two modes:
- `rate`: open loop. Request i is due at start + i/rate and its latency runs from that due
  time, so a server that falls behind shows it in the percentiles instead of silently slowing
  the generator down (no coordinated omission).
- `closed`: `connections` loops per target, each sending as soon as its last answer arrived;
  gives the most the targets can serve.
Requests are spread round-robin over the targets (one per replica). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

READ_TIMEOUT_SECONDS = 10.0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0

    def add(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


class Connection:
    """One keep-alive connection to host:port sending `request` bytes."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        async with asyncio.timeout(READ_TIMEOUT_SECONDS):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def build_request(url: str, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", *headers, "", ""]
    return parts.hostname or "127.0.0.1", parts.port or 80, "\r\n".join(lines).encode()


async def _timed(conn: Connection, due: float, tally: Tally) -> None:
    try:
        status = await conn.send()
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        tally.failures += 1
        await conn.close()
        return
    tally.add(status, time.perf_counter() - due)


async def run_rate(pools: list[asyncio.Queue[Connection]], rate: float, seconds: float) -> Tally:
    tally = Tally()
    tasks: list[asyncio.Task[None]] = []

    async def one(pool: asyncio.Queue[Connection], due: float) -> None:
        conn = await pool.get()
        try:
            await _timed(conn, due, tally)
        finally:
            pool.put_nowait(conn)

    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(pools[i % len(pools)], due)))
    await asyncio.gather(*tasks)
    return tally


async def run_closed(pools: list[asyncio.Queue[Connection]], seconds: float) -> Tally:
    tally = Tally()
    stop_at = time.perf_counter() + seconds

    async def loop(conn: Connection) -> None:
        while time.perf_counter() < stop_at:
            await _timed(conn, time.perf_counter(), tally)

    conns = [pool.get_nowait() for pool in pools for _ in range(pool.qsize())]
    await asyncio.gather(*(loop(c) for c in conns))
    for conn in conns:
        await conn.close()
    return tally


def summary(tally: Tally, elapsed: float) -> dict[str, object]:
    ordered = sorted(tally.latencies)

    def pct(p: float) -> float:
        if not ordered:
            return float("nan")
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "requests": len(ordered),
        "failures": tally.failures,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "rps": round(len(ordered) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else float("nan"),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else float("nan"),
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    pools: list[asyncio.Queue[Connection]] = []
    for url in args.url:
        host, port, request = build_request(url, args.header)
        pool: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(args.connections):
            pool.put_nowait(Connection(host, port, request))
        pools.append(pool)
    if args.warmup > 0 and args.mode == "rate":
        await run_rate(pools, args.rate, args.warmup)
    started = time.perf_counter()
    if args.mode == "rate":
        tally = await run_rate(pools, args.rate, args.seconds)
    else:
        tally = await run_closed(pools, args.seconds)
    result = summary(tally, time.perf_counter() - started)
    result.update(mode=args.mode, targets=len(args.url), connections=args.connections)
    if args.mode == "rate":
        result["offered_rps"] = args.rate
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", required=True, help="one per target")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--mode", choices=("rate", "closed"), default="rate")
    parser.add_argument("--rate", type=float, default=300.0, help="requests/s over all targets")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32, help="per target")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
