"""The channel interface: deliver one outbox message, say what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from paycore.outbox.models import OutboxChannel, OutboxMessage


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """`ok`: delivered. Otherwise `permanent` means no retry can help (the row goes `dead` now);
    `retry_after` is the receiver's own wish (a `Retry-After`), honoured when longer than ours.
    `suppressed`: deliberately not sent (the row is `suppressed`, `detail` says why)."""

    ok: bool
    detail: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    suppressed: bool = False

    @classmethod
    def delivered(cls, detail: str | None = None) -> DeliveryOutcome:
        return cls(ok=True, detail=detail)

    @classmethod
    def withheld(cls, reason: str) -> DeliveryOutcome:
        return cls(ok=False, detail=reason[:1000], permanent=True, suppressed=True)

    @classmethod
    def failed(
        cls, detail: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> DeliveryOutcome:
        return cls(ok=False, detail=detail[:1000], permanent=permanent, retry_after=retry_after)


class Channel(Protocol):
    """Deliver `message` once. Must not raise for a delivery failure (return `failed`); must be
    safe to call again for the same message (receivers get a stable id to drop repeats)."""

    channel: OutboxChannel

    async def deliver(self, message: OutboxMessage) -> DeliveryOutcome: ...


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` in seconds (HTTP-date forms are rare from webhooks; they are ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
