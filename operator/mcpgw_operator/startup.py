"""Kopf's configuration: storage under our API group, watch timeouts, one active instance."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mcpgw_core.api import GROUP


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Finalizer and progress annotations carry our group, not Kopf's default one.
    settings.persistence.finalizer = f"{GROUP}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Server-side watch timeouts make stale connections (proxies, LB idle cuts) recover.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    # Our Events carry meaning; Kopf's own per-handler chatter is left to the log.
    settings.posting.level = logging.WARNING
    settings.posting.enabled = True
    # One active instance: the chart runs a single replica with the Recreate strategy and the
    # operator starts with --standalone, so no peering objects (and no RBAC for them) are needed.
    settings.peering.standalone = True
