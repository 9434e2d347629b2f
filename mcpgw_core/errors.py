"""Exception types of the protocol core; each carries a condition reason and a redacted message."""

from __future__ import annotations


class OAuthError(Exception):
    """A failure with a stable condition reason and a message safe to show in status and Events.

    `retryable` says whether trying again later may succeed (network faults, 5xx) or whether the
    input must change first (bad metadata, rejected registration).
    """

    def __init__(self, reason: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
