"""When to reconcile a gateway again without a watch event: retries when due, periodic resyncs.

One loop for all gateways instead of a Kopf timer per object: a timer would make Kopf add a
finalizer and keep a task per gateway, and this needs neither.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)


@dataclass
class Scheduler:
    """Tracks, per gateway, when a retry is due and when the last full pass ran."""

    tick_seconds: float
    resync_seconds: float
    retry_due: dict[Key, datetime] = field(default_factory=dict)
    last_pass: dict[Key, datetime] = field(default_factory=dict)
    urgent: set[Key] = field(default_factory=set)
    # Consecutive Kubernetes API failures per gateway, and when to try again.
    api_failures: dict[Key, int] = field(default_factory=dict)
    api_retry_at: dict[Key, datetime] = field(default_factory=dict)

    def soon(self, key: Key) -> None:
        """Run a full pass at the next tick (after a write conflict)."""
        self.urgent.add(key)

    def api_failed(self, key: Key, now: datetime) -> float:
        """An API call of this gateway's pass failed: retry with backoff (2 s doubling to 60 s),
        so an overloaded or unreachable API server is not answered with more load."""
        failures = self.api_failures.get(key, 0) + 1
        self.api_failures[key] = failures
        delay = min(60.0, 2.0**failures)
        self.api_retry_at[key] = now + timedelta(seconds=delay)
        return delay

    def api_succeeded(self, key: Key) -> None:
        self.api_failures.pop(key, None)

    def all_soon(self) -> None:
        """Run a full pass for every known gateway at the next tick (shared health changed)."""
        self.urgent.update(self.last_pass)

    def saw(self, key: Key, next_retry_at: str | None) -> None:
        """Record what a watch event showed: the retry time in status, if any."""
        if next_retry_at:
            self.retry_due[key] = datetime.fromisoformat(next_retry_at.replace("Z", "+00:00"))
        else:
            self.retry_due.pop(key, None)
        self.last_pass.setdefault(key, datetime.now(UTC))

    def passed(self, key: Key, at: datetime) -> None:
        self.last_pass[key] = at

    def forget(self, key: Key) -> None:
        self.retry_due.pop(key, None)
        self.last_pass.pop(key, None)
        self.urgent.discard(key)
        self.api_failures.pop(key, None)
        self.api_retry_at.pop(key, None)

    def due(self, now: datetime) -> list[tuple[Key, str]]:
        """Gateways to reconcile now, with the trigger: `tick` (retry due) or `resync`."""
        urgent = self.urgent | {k for k, at in self.api_retry_at.items() if at <= now}
        result: list[tuple[Key, str]] = [(k, "resync") for k in urgent]
        result += [(k, "tick") for k, at in self.retry_due.items() if at <= now and k not in urgent]
        retrying = {k for k, _ in result}
        result += [
            (k, "resync")
            for k, at in self.last_pass.items()
            if k not in retrying and (now - at).total_seconds() >= self.resync_seconds
        ]
        return result

    async def run(self, reconcile: Callable[[Key, str], Awaitable[None]]) -> None:
        """Forever: every tick, start the due passes (concurrently) and wait for them."""
        while True:
            await asyncio.sleep(self.tick_seconds)
            now = datetime.now(UTC)
            due = self.due(now)
            for key, _ in due:
                # Mark first, so a slow pass is not started twice by the next tick.
                self.retry_due.pop(key, None)
                self.urgent.discard(key)
                self.api_retry_at.pop(key, None)
                self.last_pass[key] = now
            if due:
                await asyncio.gather(*(reconcile(key, trigger) for key, trigger in due))
