"""The periodic jobs the worker runs, in one explicit list.

Each domain adds its jobs here as it lands (order expiry, payment reconciliation, idempotency-key
pruning, outbox delivery); the foundation ships the loop and the leases they run under.
"""

from __future__ import annotations

from paycore.config import Settings
from paycore.worker.loop import PeriodicJob


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    del settings  # periods will come from settings as jobs are added
    return []
