"""When to reconcile a gateway again without a watch event: retries when due, periodic resyncs.

One loop for all gateways instead of a Kopf timer per object: a timer would make Kopf add a
finalizer and keep a task per gateway, and this needs neither.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

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

    def soon(self, key: Key) -> None:
        """Run a full pass at the next tick (after a conflict or an API error)."""
        self.urgent.add(key)

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

    def due(self, now: datetime) -> list[tuple[Key, str]]:
        """Gateways to reconcile now, with the trigger: `tick` (retry due) or `resync`."""
        result: list[tuple[Key, str]] = [(k, "resync") for k in self.urgent]
        result += [
            (k, "tick") for k, at in self.retry_due.items() if at <= now and k not in self.urgent
        ]
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
                self.last_pass[key] = now
            if due:
                await asyncio.gather(*(reconcile(key, trigger) for key, trigger in due))
