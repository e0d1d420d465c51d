"""The worker loop: drains work queues (outbox, fulfillments) and runs periodic jobs.

Queues are drained batch after batch while they have work, then the loop sleeps until woken
(PostgreSQL NOTIFY) or until the poll interval passes. Periodic jobs run once per period across any
number of workers: a job's lease is taken for one period and not released, so whichever worker wins
it runs the job and the others skip it until the period has passed. A worker that dies mid-job
simply lets its lease run out.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from paycore.clock import utcnow
from paycore.db import Database
from paycore.ids import random_base62
from paycore.logging import get_logger
from paycore.ops.metrics import JOB_DURATION, JOB_RUNS
from paycore.worker.leases import lease_expiry, try_acquire_lease
from paycore.worker.wakeup import Wakeup

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    period: timedelta
    # The job opens its own sessions: a long job should commit in steps, not in one transaction.
    run: Callable[[Database], Awaitable[None]]


class WorkQueue(Protocol):
    """Rows to deliver. `process_batch` claims and handles one batch, returning how many it claimed;
    when `stop` is set it claims nothing more and hands back what it cannot finish in time."""

    async def process_batch(self, stop: asyncio.Event) -> int: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random_base62(6)}"


class Worker:
    def __init__(
        self,
        database: Database,
        *,
        jobs: Sequence[PeriodicJob],
        poll_interval: float,
        queues: Sequence[WorkQueue] = (),
        wakeup: Wakeup | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.jobs = list(jobs)
        self.queues = list(queues)
        self.poll_interval = poll_interval
        self.wakeup = wakeup or Wakeup()
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
                    session, name=lease_name, holder=self.worker_id, ttl=job.period, now=now
                )
                until = now + job.period if won else await lease_expiry(session, name=lease_name)
            self._next_attempt[job.name] = until or now + job.period
            if not won:
                continue
            started = time.perf_counter()
            try:
                await job.run(self.database)
                ran.append(job.name)
                JOB_RUNS.labels(job=job.name, result="ok").inc()
            except Exception:
                JOB_RUNS.labels(job=job.name, result="failed").inc()
                log.exception("periodic_job_failed", job=job.name, worker_id=self.worker_id)
            finally:
                JOB_DURATION.labels(job=job.name).observe(time.perf_counter() - started)
        return ran

    async def drain_queues(self, stop: asyncio.Event) -> int:
        """One batch from each queue; returns how many rows were claimed in all."""
        claimed = 0
        for queue in self.queues:
            try:
                claimed += await queue.process_batch(stop)
            except Exception:
                # A database outage must not kill the worker; the rows stay and it tries again.
                log.exception("work_queue_failed", queue=type(queue).__name__, worker_id=self.worker_id)
        return claimed

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until `stop` is set; rows and jobs in hand are finished (or handed back), never lost."""
        log.info(
            "worker_started",
            worker_id=self.worker_id,
            jobs=[job.name for job in self.jobs],
            queues=[type(queue).__name__ for queue in self.queues],
        )
        await self.wakeup.start()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                busy = await self.drain_queues(stop) > 0
                try:
                    await self.run_due_jobs()
                except Exception:
                    log.exception("worker_tick_failed", worker_id=self.worker_id)
                if busy or stop.is_set():
                    await asyncio.sleep(0)  # more may be waiting: go again at once
                    continue
                woken = asyncio.create_task(self.wakeup.wait(self.poll_interval))
                await asyncio.wait({woken, stopping}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            stopping.cancel()
            await self.wakeup.stop()
        log.info("worker_stopped", worker_id=self.worker_id)
