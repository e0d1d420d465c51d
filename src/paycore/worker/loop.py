"""The worker loop: runs each periodic job once per period across any number of workers.

A job's lease is taken for one period and not released, so whichever worker wins it runs the job
and the others skip it until the period has passed. A worker that dies mid-job simply lets its
lease run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from paycore.clock import utcnow
from paycore.db import Database
from paycore.ids import random_base62
from paycore.logging import get_logger
from paycore.worker.leases import lease_expiry, try_acquire_lease

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    period: timedelta
    # The job opens its own sessions: a long job should commit in steps, not in one transaction.
    run: Callable[[Database], Awaitable[None]]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random_base62(6)}"


class Worker:
    def __init__(
        self,
        database: Database,
        *,
        jobs: Sequence[PeriodicJob],
        poll_interval: float,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.jobs = list(jobs)
        self.poll_interval = poll_interval
        self.worker_id = worker_id or default_worker_id()
        self._clock = clock
        # When this worker should next try each job: avoids a lease write on every tick.
        self._next_attempt: dict[str, datetime] = {}

    async def run_due_jobs(self) -> list[str]:
        """Run every job that is due and whose lease this worker wins; returns their names."""
        ran: list[str] = []
        for job in self.jobs:
            now = self._clock()
            if self._next_attempt.get(job.name, now) > now:
                continue
            lease_name = f"job:{job.name}"
            async with self.database.session(write=True) as session:
                won = await try_acquire_lease(
                    session,
                    name=lease_name,
                    holder=self.worker_id,
                    ttl=job.period,
                    now=now,
                )
                until = now + job.period if won else await lease_expiry(session, name=lease_name)
            self._next_attempt[job.name] = until or now + job.period
            if not won:
                continue
            try:
                await job.run(self.database)
                ran.append(job.name)
            except Exception:
                log.exception("periodic_job_failed", job=job.name, worker_id=self.worker_id)
        return ran

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until `stop` is set; the job in hand is finished, never abandoned half-way."""
        log.info(
            "worker_started",
            worker_id=self.worker_id,
            jobs=[job.name for job in self.jobs],
        )
        while not stop.is_set():
            try:
                await self.run_due_jobs()
            except Exception:
                # A database outage must not kill the worker; it retries on the next tick.
                log.exception("worker_tick_failed", worker_id=self.worker_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
        log.info("worker_stopped", worker_id=self.worker_id)
