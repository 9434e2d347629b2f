"""Kubernetes Events about MCPGateways, posted through the API gateway module."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mcpgw_core.kube import Kube, KubeError, core_path
from mcpgw_core.redact import redact_text

JSON = dict[str, Any]
COMPONENT = "mcpgw-operator"
EVENT_MESSAGE_LIMIT = 1024


@dataclass
class EventSink:
    """Posts core/v1 Events; a failure to post is logged by the caller, never fatal."""

    kube: Kube

    async def post(self, body: JSON, event_type: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": event_type,
            "reason": reason,
            # Event messages may be 1 KiB; the default cap would cut off the advice at the end.
            "message": redact_text(message, limit=EVENT_MESSAGE_LIMIT),
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": socket.gethostname(),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.create(core_path("events", meta["namespace"]), event)
        except KubeError:
            # Events are advisory; status carries the same facts.
            return

    async def normal(self, body: JSON, reason: str, message: str) -> None:
        await self.post(body, "Normal", reason, message)

    async def warn(self, body: JSON, reason: str, message: str) -> None:
        await self.post(body, "Warning", reason, message)
