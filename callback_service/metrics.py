"""Prometheus metrics of one app instance, in its own registry so tests can build many apps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram

PREFIX: Final = "mcpgw_callback"
# Authorize is a Redis write and two API reads; callback adds a token exchange.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Metrics:
    """Counters and histograms of flows, state rejections, token exchanges and latency."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        reg = self.registry
        self.flows_started = Counter(
            f"{PREFIX}_flows_started", "Authorization flows started (redirects sent).", registry=reg
        )
        self.flows_completed = Counter(
            f"{PREFIX}_flows_completed",
            "Callbacks finished, by result (Authorized or the failure reason).",
            ["result"],
            registry=reg,
        )
        self.authorize_rejections = Counter(
            f"{PREFIX}_authorize_rejections",
            "Authorize requests refused, by reason.",
            ["reason"],
            registry=reg,
        )
        self.links_minted = Counter(
            f"{PREFIX}_links_minted",
            "Authorize links minted for Kubernetes users (TokenReview and RBAC passed).",
            registry=reg,
        )
        self.link_rejections = Counter(
            f"{PREFIX}_link_rejections",
            "Requests for an authorize link refused, by reason.",
            ["reason"],
            registry=reg,
        )
        self.state_rejections = Counter(
            f"{PREFIX}_state_rejections",
            "State parameters refused at the callback, by reason.",
            ["reason"],
            registry=reg,
        )
        self.token_exchanges = Counter(
            f"{PREFIX}_token_exchanges",
            "Authorization-code exchanges, by result (ok, rejected, failed).",
            ["result"],
            registry=reg,
        )
        self.request_duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
