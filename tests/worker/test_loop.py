from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from paycore.clock import utcnow
from paycore.db import Database
from paycore.worker.loop import PeriodicJob, Worker


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


class TestPeriodicJobs:
    async def test_each_job_runs_once_per_period_across_workers(self, db: Database) -> None:
        runs: list[str] = []

        async def job(_: Database) -> None:
            runs.append("ran")

        clock = Clock()
        jobs = [PeriodicJob(name="tick", period=timedelta(minutes=5), run=job)]
        first = Worker(db, jobs=jobs, poll_interval=0.01, worker_id="w1", clock=clock)
        second = Worker(db, jobs=jobs, poll_interval=0.01, worker_id="w2", clock=clock)

        assert await first.run_due_jobs() == ["tick"]
        assert await second.run_due_jobs() == []
        assert await first.run_due_jobs() == []  # not due again within its period
        clock.now += timedelta(minutes=5, seconds=1)
        ran_after_period = await second.run_due_jobs() + await first.run_due_jobs()
        assert ran_after_period == ["tick"]
        assert len(runs) == 2

    async def test_a_failing_job_does_not_stop_the_others(self, db: Database) -> None:
        ran: list[str] = []

        async def broken(_: Database) -> None:
            raise RuntimeError("boom")

        async def healthy(_: Database) -> None:
            ran.append("healthy")

        worker = Worker(
            db,
            jobs=[
                PeriodicJob(name="broken", period=timedelta(minutes=1), run=broken),
                PeriodicJob(name="healthy", period=timedelta(minutes=1), run=healthy),
            ],
            poll_interval=0.01,
        )
        assert await worker.run_due_jobs() == ["healthy"]
        assert ran == ["healthy"]


class TestStopping:
    async def test_run_returns_promptly_once_stop_is_set(self, db: Database) -> None:
        worker = Worker(db, jobs=[], poll_interval=30)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=2)
        assert task.done()
        assert task.exception() is None

    async def test_the_job_in_hand_is_finished_before_stopping(self, db: Database) -> None:
        started, finished = asyncio.Event(), asyncio.Event()

        async def slow(_: Database) -> None:
            started.set()
            await asyncio.sleep(0.2)
            finished.set()

        worker = Worker(
            db, jobs=[PeriodicJob(name="slow", period=timedelta(minutes=1), run=slow)], poll_interval=30
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await started.wait()
        stop.set()
        await asyncio.wait_for(task, timeout=2)
        assert finished.is_set()
