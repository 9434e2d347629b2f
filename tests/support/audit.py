"""Reads the API server's audit log to count the requests one user made (writes, above all)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.support.operator_process import OPERATOR_SA, SYSTEM_NAMESPACE

OPERATOR_USER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{OPERATOR_SA}"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class AuditedRequest:
    verb: str
    resource: str
    name: str
    subresource: str

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


@dataclass(frozen=True)
class AuditLog:
    path: Path

    def mark(self) -> int:
        """A position; `requests(since=...)` then sees only what came after it."""
        return self.path.stat().st_size if self.path.exists() else 0

    def requests(
        self, *, since: int, namespace: str, user: str = OPERATOR_USER
    ) -> list[AuditedRequest]:
        """Completed requests by `user` on objects in `namespace` after the mark."""
        with self.path.open("rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line still being written when we read
            ref = event.get("objectRef") or {}
            if (
                event.get("stage") == "ResponseComplete"
                and event.get("user", {}).get("username") == user
                and ref.get("namespace") == namespace
            ):
                found.append(
                    AuditedRequest(
                        event["verb"],
                        ref.get("resource", ""),
                        ref.get("name", ""),
                        ref.get("subresource", ""),
                    )
                )
        return found
