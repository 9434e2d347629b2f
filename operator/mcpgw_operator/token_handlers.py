"""Kopf handler for users' token Secrets: refresh triggers, and the gateway pass that follows.

Any change to a token Secret (a new authorization, a refresh, a `refresh-requested`
annotation, a recorded failure) may change the gateway's `Authorized` condition, so each one
runs the gateway's pass, which writes nothing when nothing differs. Deletions are handled by
the owned-Secret handler in handlers.py, which already runs the pass.
"""

from __future__ import annotations

from typing import Any

import kopf

from mcpgw_core.token_secrets import GATEWAY_LABEL, ROLE_LABEL, TOKEN_ROLE
from mcpgw_operator import runtime
from mcpgw_operator.handlers import run_pass


@kopf.on.event("v1", "secrets", labels={ROLE_LABEL: TOKEN_ROLE, GATEWAY_LABEL: kopf.PRESENT})
async def token_secret_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    state = runtime.get()
    meta = body["metadata"]
    if state.refresher is None:
        return
    if type == "DELETED":
        state.refresher.forget((meta["namespace"], meta["name"]))
        return
    await state.refresher.saw(dict(body))
    await run_pass((meta["namespace"], meta["labels"][GATEWAY_LABEL]), "resync")
