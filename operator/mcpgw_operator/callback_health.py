"""Pure evaluation of the callback service's health into CallbackReady and StateStoreReady.

Takes what the infra loop observed (the key Secret's verdict, the Deployment, the answer of
`/readyz`, the operator's own Redis PING) and returns the two conditions every gateway carries.
No network, clock or environment; messages are stable so an unchanged service writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from mcpgw_core.api import ConditionStatus, Reason
from mcpgw_core.redact import cap, strip_control
from mcpgw_operator.decide import CallbackHealth, ConditionValue
from mcpgw_operator.settings import OperatorSettings

JSON = dict[str, Any]
_PROBLEM_LIMIT: Final = 200
# Reasons /readyz may give that are also condition reasons; others become the generic one.
_KNOWN_PROBLEMS: Final = frozenset({Reason.STATE_STORE_UNREACHABLE, Reason.HMAC_KEY_MISSING})


@dataclass(frozen=True)
class ReadyzAnswer:
    """What `/readyz` said: its HTTP status and problems, or why it did not answer."""

    status_code: int | None = None
    problems: tuple[tuple[str, str], ...] = ()  # (reason, message)
    error: str = ""

    @property
    def answered(self) -> bool:
        return self.status_code is not None

    @property
    def ready(self) -> bool:
        return self.status_code == 200


@dataclass(frozen=True)
class CallbackObservation:
    """Everything one infra pass found out about the callback service."""

    key_problem: str | None = None
    deployment: JSON | None = None
    readyz: ReadyzAnswer = ReadyzAnswer()
    redis_ping: bool | None = None  # the operator's own PING; None when not tried
    api_error: str | None = None  # the objects could not be read at all


def readyz_answer(status_code: int, body: object) -> ReadyzAnswer:
    """Parse `/readyz`'s JSON body (`problems: [{reason, message}]`); anything odd is ignored."""
    problems: list[tuple[str, str]] = []
    raw = body.get("problems") if isinstance(body, dict) else None
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            message = item.get("message")
            problems.append(
                (
                    cap(strip_control(item["reason"]), 64),
                    cap(strip_control(message if isinstance(message, str) else ""), _PROBLEM_LIMIT),
                )
            )
    return ReadyzAnswer(status_code, tuple(problems[:4]))


def _replicas(deployment: JSON | None) -> tuple[int, int]:
    spec = (deployment or {}).get("spec") or {}
    status = (deployment or {}).get("status") or {}
    return int(status.get("availableReplicas") or 0), int(spec.get("replicas", 1))


def _callback_ready(settings: OperatorSettings, seen: CallbackObservation) -> ConditionValue:
    ns, name = settings.callback_namespace, settings.callback_name
    if seen.key_problem is not None:
        return ConditionValue(
            ConditionStatus.FALSE,
            Reason.HMAC_KEY_MISSING,
            f"HMAC key-ring Secret {ns}/{settings.key_secret_name}: {seen.key_problem}",
        )
    readyz_url = f"{settings.health_base_url}/readyz"
    available, desired = _replicas(seen.deployment)
    if seen.deployment is None:
        deployment = f"Deployment {ns}/{name} does not exist"
    else:
        deployment = f"Deployment {ns}/{name} has {available}/{desired} replicas available"
    if seen.readyz.ready:
        return ConditionValue(
            ConditionStatus.TRUE,
            Reason.CALLBACK_READY,
            f"{readyz_url} answers 200 (decided by /readyz; {deployment})",
        )
    if seen.deployment is not None and available > 0:
        return ConditionValue(
            ConditionStatus.TRUE, Reason.CALLBACK_READY, f"{deployment} (decided by the Deployment)"
        )
    if seen.readyz.answered:
        reasons = [r for r, _ in seen.readyz.problems]
        reason = next(
            (r for r in reasons if r in _KNOWN_PROBLEMS), Reason.CALLBACK_SERVICE_UNAVAILABLE
        )
        said = "; ".join(f"{r}: {m}" for r, m in seen.readyz.problems) or "no reason given"
        return ConditionValue(
            ConditionStatus.FALSE,
            reason,
            f"{readyz_url} answered {seen.readyz.status_code} ({said}); {deployment}",
        )
    return ConditionValue(
        ConditionStatus.FALSE,
        Reason.CALLBACK_SERVICE_UNAVAILABLE,
        f"{deployment}, and {readyz_url} did not answer ({seen.readyz.error or 'no answer'})",
    )


def _state_store_ready(settings: OperatorSettings, seen: CallbackObservation) -> ConditionValue:
    replicas = settings.callback_replicas
    if replicas > 1 and not settings.redis_configured:
        return ConditionValue(
            ConditionStatus.FALSE,
            Reason.STATE_STORE_NOT_SHARED,
            f"{replicas} callback replicas need one shared Redis and none is configured "
            "(MCPGW_CALLBACK_REDIS_URL or MCPGW_CALLBACK_REDIS_URL_SECRET); a flow started on "
            "one replica would fail on another",
        )
    # A body listing problems is a real /readyz; a bare 404 may be anything at that URL.
    if seen.readyz.ready or seen.readyz.problems:
        store = [m for r, m in seen.readyz.problems if r == Reason.STATE_STORE_UNREACHABLE]
        if store:
            return ConditionValue(
                ConditionStatus.FALSE,
                Reason.STATE_STORE_UNREACHABLE,
                f"The callback service cannot use Redis: {store[0]} (decided by /readyz)",
            )
        return ConditionValue(
            ConditionStatus.TRUE,
            Reason.STATE_STORE_READY,
            "Redis answers the callback service (decided by /readyz)",
        )
    if seen.redis_ping is True:
        return ConditionValue(
            ConditionStatus.TRUE,
            Reason.STATE_STORE_READY,
            "Redis answers the operator's PING (the callback service's /readyz did not answer)",
        )
    if seen.redis_ping is False:
        return ConditionValue(
            ConditionStatus.FALSE,
            Reason.STATE_STORE_UNREACHABLE,
            "Redis does not answer the operator's PING, and the callback service's /readyz "
            "did not answer either",
        )
    return ConditionValue(
        ConditionStatus.UNKNOWN,
        Reason.AWAITING_CALLBACK_SERVICE,
        "Waiting for the callback service's /readyz to report on Redis",
    )


def evaluate_health(settings: OperatorSettings, seen: CallbackObservation) -> CallbackHealth:
    """CallbackReady and StateStoreReady, the same for every gateway."""
    if seen.api_error is not None:
        unknown = ConditionValue(
            ConditionStatus.UNKNOWN,
            Reason.AWAITING_CALLBACK_SERVICE,
            f"The operator cannot manage the callback service in namespace "
            f"{settings.callback_namespace}: {seen.api_error}",
        )
        return CallbackHealth(callback_ready=unknown, state_store_ready=unknown)
    return CallbackHealth(
        callback_ready=_callback_ready(settings, seen),
        state_store_ready=_state_store_ready(settings, seen),
    )
