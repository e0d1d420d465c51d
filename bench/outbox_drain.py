"""Outbox drain: how fast paycore's worker empties a backlog, and how soon it delivers a new message.

Runs on a throwaway PostgreSQL database (migrated to head, dropped at the end, also on Ctrl-C).

Throughput: preloads `--rows` due `ops_alert` rows (COPY), then drains them with `--workers`
paycore Workers, each with its own worker id and one OutboxDispatcher (the real claim_due_messages /
record_outcome code) delivering to a no-op channel. All of them run in this process and share one
Database: one SQLAlchemy pool, 10 + 10 connections by default (`--pool-size`, `--max-overflow`).
The reference, measured in the same run on an identical fresh preload, is a raw asyncpg loop on as
many connections doing `UPDATE outbox SET status = 'sent' … WHERE id IN (SELECT … FOR UPDATE SKIP
LOCKED LIMIT 10)` until nothing is left.
Target: paycore/raw >= 0.3. The paycore drain stops at `--time-limit` (90 s) if the backlog is not
gone by then: the rate is then over the rows drained so far, compared with the raw loop's rate over
as many first rows, and says INCOMPLETE. Exits 1 unless every row the paycore run claimed ends
`sent` with exactly one attempt and reached the channel exactly once (and every other row is still
pending and unlocked), and the raw loop sent every row.

Latency: a running Worker with PostgresWakeup (LISTEN paycore_work) and a 1 s poll interval, while
this process enqueues one message every 20–50 ms (paycore.outbox.service.enqueue in its own
Database.session, on a second pool as an API process would); latency is from the enqueue's commit
to the no-op channel receiving the message. Target: p99 < 50 ms. The reference is the same with
wake-up disabled (polling alone), which shows what LISTEN/NOTIFY buys.

    .venv/bin/python bench/outbox_drain.py [--rows 100000] [--workers 4] [--time-limit 90]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from _support import (
    InProcessCpu,
    asyncpg_dsn,
    latency_summary,
    percentile,
    run_main,
    throwaway_postgres,
)
from sqlalchemy import event

from paycore.audit.service import Actor
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.ids import new_id
from paycore.logging import configure_logging
from paycore.migrations import upgrade_to_head
from paycore.outbox.channels.base import DeliveryOutcome
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.outbox.service import enqueue
from paycore.tenancy.service import create_tenant
from paycore.worker.loop import Worker
from paycore.worker.wakeup import PostgresWakeup, Wakeup

TARGET_RATIO = 0.3
TARGET_P99_MS = 50.0
RAW_BATCH = 10
RAW_DRAIN = f"""
UPDATE outbox
   SET status = 'sent', attempts = attempts + 1, sent_at = now(), updated_at = now(),
       locked_until = NULL, locked_by = NULL, last_error = NULL
 WHERE id IN (SELECT id FROM outbox
               WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at
               LIMIT {RAW_BATCH} FOR UPDATE SKIP LOCKED)
"""
COPY_COLUMNS = (
    "id",
    "tenant_id",
    "livemode",
    "channel",
    "topic",
    "dedupe_key",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)


class NoopChannel:
    """Delivers nothing, instantly: records when (time.perf_counter) it was handed each message."""

    channel = OutboxChannel.OPS_ALERT

    def __init__(self) -> None:
        self.received: dict[str, float] = {}  # dedupe key → first receipt
        self.deliveries = 0
        self.arrived = asyncio.Event()

    async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
        self.received.setdefault(message.dedupe_key, time.perf_counter())
        self.deliveries += 1
        self.arrived.set()
        return DeliveryOutcome.delivered()

    async def wait_for(self, keys: Collection[str], limit_seconds: float) -> None:
        """Until every key has arrived, or `limit_seconds` passed."""
        deadline = time.perf_counter() + limit_seconds
        while any(key not in self.received for key in keys):
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.perf_counter()))
            if time.perf_counter() >= deadline:
                return


@dataclass
class DrainProgress:
    """Rows claimed by batches that have finished (every row in them recorded); set `done` at the target."""

    target: int
    finished: int = 0
    by_worker: Counter[str] = field(default_factory=Counter)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float = 0.0


class CountedQueue:
    """A WorkQueue around paycore's OutboxDispatcher that notes each finished batch's size.

    OutboxDispatcher.process_batch returns only once every claimed row's outcome is recorded, so
    when the finished batches add up to the preload, the backlog is drained."""

    def __init__(self, dispatcher: OutboxDispatcher, progress: DrainProgress) -> None:
        self.dispatcher = dispatcher
        self.progress = progress

    async def process_batch(self, stop: asyncio.Event) -> int:
        claimed = await self.dispatcher.process_batch(stop)
        progress = self.progress
        progress.finished += claimed
        progress.by_worker[self.dispatcher.worker_id] += claimed
        if progress.finished >= progress.target and not progress.done.is_set():
            progress.finished_at = time.perf_counter()
            progress.done.set()
        return claimed


@asynccontextmanager
async def running(workers: Sequence[Worker]) -> AsyncIterator[asyncio.Event]:
    """The workers' loops as tasks; on exit they are stopped (rows in hand finished), cancelled if slow."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop), name=f"worker {worker.worker_id}") for worker in workers]
    try:
        yield stop
    finally:
        stop.set()
        _, slow = await asyncio.wait(tasks, timeout=15)
        for task in slow:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, Exception):
                print(f"{task.get_name()} failed: {result!r}", file=sys.stderr)


async def preload(connection: asyncpg.Connection, tenant_id: str, rows: int, label: str) -> float:
    """Empty the outbox, COPY `rows` due ops alerts into it, vacuum and checkpoint; returns seconds."""
    started = time.perf_counter()
    await connection.execute("TRUNCATE outbox CASCADE")
    base = datetime.now(UTC) - timedelta(hours=1)
    payload = json.dumps({"code": "bench", "message": "outbox drain benchmark", "details": {}})
    chunk = 20_000
    for first in range(0, rows, chunk):
        records = []
        for number in range(first, min(rows, first + chunk)):
            due = base + timedelta(microseconds=number)  # distinct, in the past, in preload order
            dedupe_key = f"ops:bench:{label}:{number}"
            row = (new_id("msg"), tenant_id, False, "ops_alert", "bench", dedupe_key, payload, "pending", 0)
            records.append((*row, due, due, due))
        await connection.copy_records_to_table("outbox", records=records, columns=COPY_COLUMNS)
    await connection.execute("VACUUM ANALYZE outbox")
    with contextlib.suppress(asyncpg.PostgresError):  # needs superuser (or pg_checkpoint): optional
        await connection.execute("CHECKPOINT")  # so the preload's dirty pages are not written mid-run
    return time.perf_counter() - started


@dataclass
class RawDrain:
    seconds: float
    sent: int
    cpu: str
    # (rows sent so far, seconds since the start) after each statement that changed rows
    timeline: list[tuple[int, float]]

    def seconds_for(self, rows: int) -> float:
        """How long the raw loop took to send its first `rows` rows."""
        index = bisect.bisect_left(self.timeline, (rows, 0.0))
        return self.timeline[min(index, len(self.timeline) - 1)][1]


async def drain_raw(dsn: str, connections: int) -> RawDrain:
    """The reference: `connections` asyncpg connections claiming-and-sending 10 rows per statement."""
    opened: list[asyncpg.Connection] = []
    sent = 0
    timeline: list[tuple[int, float]] = []

    async def loop(connection: asyncpg.Connection) -> None:
        nonlocal sent
        while True:
            status = await connection.execute(RAW_DRAIN)  # autocommit: one transaction per statement
            rows = int(status.rsplit(" ", 1)[1])
            if rows == 0:
                return
            sent += rows
            timeline.append((sent, time.perf_counter() - started))

    try:
        for _ in range(connections):
            opened.append(await asyncpg.connect(dsn))
        async with InProcessCpu() as cpu:
            started = time.perf_counter()
            await asyncio.gather(*(loop(connection) for connection in opened))
            seconds = time.perf_counter() - started
        return RawDrain(seconds, sent, cpu.line(), timeline)
    finally:
        await asyncio.gather(*(connection.close() for connection in opened), return_exceptions=True)


def track_peak_checkouts(database: Database) -> list[int]:
    """A one-item list that follows the most connections ever checked out of the database's pool."""
    pool = database.engine.sync_engine.pool
    peak = [0]

    def on_checkout(*_: object) -> None:
        peak[0] = max(peak[0], pool.checkedout())  # type: ignore[attr-defined]

    event.listen(pool, "checkout", on_checkout)
    return peak


@dataclass(frozen=True)
class PaycoreDrain:
    seconds: float  # until the backlog was drained, or until the time limit
    drained: int  # rows whose outcome was recorded within `seconds`
    complete: bool
    progress: DrainProgress
    channel: NoopChannel
    peak_connections: int
    pool: str
    cpu: str


async def drain_paycore(settings: Settings, rows: int, workers: int, limit_seconds: float) -> PaycoreDrain:
    database = Database(create_engine(settings))
    channel = NoopChannel()
    progress = DrainProgress(target=rows)
    team = []
    for number in range(workers):
        worker_id = f"bench-drain-{number}"
        dispatcher = OutboxDispatcher(
            database, {OutboxChannel.OPS_ALERT: channel}, settings, worker_id=worker_id
        )
        team.append(
            Worker(
                database,
                jobs=[],
                poll_interval=settings.worker_poll_interval_seconds,
                queues=[CountedQueue(dispatcher, progress)],
                wakeup=Wakeup(),  # a backlog needs no wake-up: the loop goes again while it claims rows
                worker_id=worker_id,
            )
        )
    peak = track_peak_checkouts(database)
    try:
        cpu = InProcessCpu()
        started = time.perf_counter()
        async with running(team), cpu:  # the meter stops first: at `done`, before the workers do
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.done.wait(), limit_seconds or None)
            complete = progress.done.is_set()
            ended = progress.finished_at if complete else time.perf_counter()
            drained = progress.finished  # batches still in hand are finished as the workers stop
        return PaycoreDrain(
            seconds=ended - started,
            drained=drained,
            complete=complete,
            progress=progress,
            channel=channel,
            peak_connections=peak[0],
            pool=f"{settings.database_pool_size}+{settings.database_max_overflow}",
            cpu=cpu.line(),
        )
    finally:
        await database.dispose()


async def verify_sent_once(connection: asyncpg.Connection, drain: PaycoreDrain, rows: int) -> list[str]:
    """Problems with the paycore run (none: every row it claimed is sent once, with one attempt, and
    reached the channel once; after a time limit, every other row is still pending and unlocked)."""
    total, sent_once, still_open, locked = await connection.fetchrow(
        "SELECT count(*),"
        " count(*) FILTER (WHERE status = 'sent' AND attempts = 1 AND sent_at IS NOT NULL),"
        " count(*) FILTER (WHERE status IN ('pending', 'retrying')),"
        " count(*) FILTER (WHERE locked_by IS NOT NULL)"
        " FROM outbox"
    )
    claimed = drain.progress.finished  # by every batch, including those finished while stopping
    problems = []
    if drain.complete and claimed != rows:
        problems.append(f"batches claimed {claimed} rows in all (expected {rows})")
    if total != rows or sent_once != claimed:
        problems.append(f"{sent_once} of {total} rows are sent with attempts = 1 (expected {claimed})")
    if still_open != rows - claimed or locked:
        problems.append(
            f"{still_open} rows still pending/retrying (expected {rows - claimed}), {locked} still locked"
        )
    channel = drain.channel
    if channel.deliveries != claimed or len(channel.received) != claimed:
        problems.append(
            f"the channel got {channel.deliveries} deliveries of {len(channel.received)} distinct"
            f" messages (expected {claimed} of {claimed})"
        )
    return problems


@dataclass
class LatencyRun:
    label: str
    latencies: list[float]
    commits: list[float]
    sent: int
    missing: int


async def measure_latency(
    settings: Settings,
    tenant_id: str,
    *,
    notify: bool,
    seconds: float,
    interval: tuple[float, float],
    warmup: int,
) -> LatencyRun:
    """Enqueue at light load while one Worker runs; enqueue commit → channel receipt for each message."""
    label = "listen" if notify else "poll"
    worker_db = Database(create_engine(settings))
    producer_db = Database(create_engine(settings))  # the API process's pool, in effect
    channel = NoopChannel()
    wakeup: Wakeup = PostgresWakeup(settings) if notify else Wakeup()
    worker_id = f"bench-latency-{label}"
    worker = Worker(
        worker_db,
        jobs=[],
        poll_interval=settings.worker_poll_interval_seconds,
        queues=[
            OutboxDispatcher(worker_db, {OutboxChannel.OPS_ALERT: channel}, settings, worker_id=worker_id)
        ],
        wakeup=wakeup,
        worker_id=worker_id,
    )
    rng = random.Random(7)  # arrival jitter, reproducible
    committed: dict[str, float] = {}
    commit_durations: list[float] = []

    async def produce(key: str) -> None:
        started = time.perf_counter()
        async with producer_db.session() as session:
            await enqueue(
                session,
                tenant_id=tenant_id,
                livemode=False,
                channel=OutboxChannel.OPS_ALERT,
                topic="bench.latency",
                dedupe_key=key,
                payload={"code": "bench", "message": "latency probe", "details": {}},
            )
        committed[key] = time.perf_counter()  # the commit has returned
        commit_durations.append(committed[key] - started)

    try:
        async with running([worker]):
            if isinstance(wakeup, PostgresWakeup):
                await asyncio.wait_for(wakeup.listening.wait(), 10)
            # Warm-up (not measured): compiled statements and pooled connections on both sides.
            for number in range(warmup):
                await produce(f"ops:latency:{label}:warm:{number}")
                await asyncio.sleep(rng.uniform(*interval))
            await channel.wait_for(committed, settings.worker_poll_interval_seconds * 3)
            committed.clear()
            commit_durations.clear()
            end = time.perf_counter() + seconds
            number = 0
            while time.perf_counter() < end:
                await produce(f"ops:latency:{label}:{number}")
                number += 1
                await asyncio.sleep(rng.uniform(*interval))
            await channel.wait_for(committed, settings.worker_poll_interval_seconds * 3)
    finally:
        await worker_db.dispose()
        await producer_db.dispose()
    latencies = [channel.received[key] - at for key, at in committed.items() if key in channel.received]
    return LatencyRun(label, latencies, commit_durations, len(committed), len(committed) - len(latencies))


def p99_ms(run: LatencyRun) -> float:
    return percentile(sorted(run.latencies), 99) * 1000


async def main(arguments: argparse.Namespace) -> int:
    configure_logging(level="WARNING", json=False, stream=sys.stderr)
    logging.getLogger("paycore").setLevel(logging.WARNING)
    rows, workers = arguments.rows, arguments.workers
    async with throwaway_postgres() as database_url:
        overrides: dict[str, Any] = {
            "database_url": database_url,
            "worker_poll_interval_seconds": arguments.poll_interval,
        }
        if arguments.batch_size is not None:
            overrides["worker_batch_size"] = arguments.batch_size
        if arguments.pool_size is not None:
            overrides["database_pool_size"] = arguments.pool_size
        if arguments.max_overflow is not None:
            overrides["database_max_overflow"] = arguments.max_overflow
        settings = Settings(_env_file=None, **overrides)

        setup = Database(create_engine(settings))
        try:
            await upgrade_to_head(setup.engine)
            async with setup.session() as session:
                tenant = await create_tenant(
                    session, slug=f"bench-{secrets.token_hex(3)}", name="Bench", actor=Actor("bench")
                )
                tenant_id = tenant.id
        finally:
            await setup.dispose()

        dsn = asyncpg_dsn(database_url)
        admin = await asyncpg.connect(dsn)
        try:
            raw_load = await preload(admin, tenant_id, rows, "raw")
            raw = await drain_raw(dsn, workers)
            raw_left = await admin.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")

            paycore_load = await preload(admin, tenant_id, rows, "paycore")
            drain = await drain_paycore(settings, rows, workers, arguments.time_limit)
            problems = await verify_sent_once(admin, drain, rows)

            await admin.execute("TRUNCATE outbox CASCADE")
            latency_settings = settings.model_copy(
                update={"worker_poll_interval_seconds": arguments.latency_poll_interval}
            )
            runs = []
            for notify in (True, False):
                runs.append(
                    await measure_latency(
                        latency_settings,
                        tenant_id,
                        notify=notify,
                        seconds=arguments.latency_seconds,
                        interval=(0.020, 0.050),
                        warmup=arguments.latency_warmup,
                    )
                )
        finally:
            await admin.close()

    raw_rate, paycore_rate = raw.sent / raw.seconds, drain.drained / drain.seconds
    # Compared like for like: after a time limit, with the raw loop's rate over as many first rows.
    raw_like = (
        raw_rate if drain.complete or not drain.drained else drain.drained / raw.seconds_for(drain.drained)
    )
    ratio = paycore_rate / raw_like
    print(f"database: PostgreSQL (throwaway); {rows} due ops_alert rows preloaded by COPY for each drain")
    print(
        f"paycore: {workers} Workers in this process, each one OutboxDispatcher (own worker id, batch"
        f" {settings.worker_batch_size}, 16 deliveries at a time) to a no-op channel, sharing one"
        f" Database (pool {drain.pool}, peak {drain.peak_connections} connections checked out)"
    )
    print(
        f"raw: {workers} asyncpg connections, each repeating UPDATE … WHERE id IN (SELECT … LIMIT {RAW_BATCH}"
        " FOR UPDATE SKIP LOCKED) until it changes no row"
    )
    print(f"preload: {raw_load:.1f} s and {paycore_load:.1f} s (TRUNCATE, COPY, VACUUM ANALYZE, CHECKPOINT)")
    print(
        f"raw asyncpg drain (reference)  {raw_rate:8.0f} rows/s  {raw.seconds:6.1f} s"
        f"  {raw.sent} rows sent, {raw_left} left pending"
    )
    print(f"  {raw.cpu}")
    if drain.complete:
        print(f"paycore Worker drain           {paycore_rate:8.0f} rows/s  {drain.seconds:6.1f} s")
    else:
        print(
            f"paycore Worker drain           {paycore_rate:8.0f} rows/s  INCOMPLETE: {drain.drained} of {rows}"
            f" rows drained when the {arguments.time_limit:g} s time limit (--time-limit) ran out"
        )
        print(
            f"  (the raw loop drained its first {drain.drained} rows at {raw_like:.0f} rows/s: the ratio below"
            " compares those)"
        )
    print(f"  {drain.cpu}")
    shares = " / ".join(str(count) for _, count in sorted(drain.progress.by_worker.items()))
    print(f"  rows claimed per worker: {shares}")
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(f"ratio paycore/raw = {ratio:.3f}   target >= {TARGET_RATIO}: {verdict}")
    if problems:
        print("FAILED: " + "; ".join(problems))
    else:
        print(
            f"verified: all {drain.progress.finished} rows claimed were sent exactly once (attempts = 1),"
            f" each delivered to the channel once; {rows - drain.progress.finished} left pending, none locked"
        )

    print()
    low, high = 20, 50
    print(
        f"latency, enqueue commit → channel receipt: one message every {low}–{high} ms for"
        f" {arguments.latency_seconds:.0f} s (after {arguments.latency_warmup} warm-up messages), one Worker,"
        f" poll interval {latency_settings.worker_poll_interval_seconds:g} s"
    )
    for run in runs:
        name = "LISTEN/NOTIFY wake-up" if run.label == "listen" else "polling only (reference)"
        print(
            f"  {name:25} {latency_summary(run.latencies)}  ({run.sent} messages, {run.missing} not delivered)"
        )
    listen, poll = runs
    commit = sorted(listen.commits + poll.commits)
    print(
        f"  (the enqueue transaction itself: p50 {percentile(commit, 50) * 1000:.1f} ms, p99 {percentile(commit, 99) * 1000:.1f} ms)"
    )
    speedup = percentile(sorted(poll.latencies), 50) / percentile(sorted(listen.latencies), 50)
    print(f"  polling/LISTEN p50 = {speedup:.0f}x, p99 = {p99_ms(poll) / p99_ms(listen):.0f}x")
    verdict = "met" if p99_ms(listen) < TARGET_P99_MS else "MISSED"
    print(f"p99 with LISTEN/NOTIFY = {p99_ms(listen):.1f} ms   target < {TARGET_P99_MS:.0f} ms: {verdict}")
    undelivered = listen.missing + poll.missing
    if undelivered:
        print(f"FAILED: {undelivered} latency probes were not delivered within three poll intervals")
    return 0 if not problems and not undelivered and raw_left == 0 and raw.sent == rows else 1


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=100_000, help="rows preloaded for each drain (default 100000)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="paycore Workers, and raw connections (default 4)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="PAYCORE_WORKER_BATCH_SIZE (default: paycore's, 50)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=None, help="PAYCORE_DATABASE_POOL_SIZE (default: paycore's, 10)"
    )
    parser.add_argument(
        "--max-overflow",
        type=int,
        default=None,
        help="PAYCORE_DATABASE_MAX_OVERFLOW (default: paycore's, 10)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="worker poll interval while draining (default 1 s)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=90,
        help="stop the paycore drain after this long and report the rate so far (default 90 s; 0: none)",
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=10, help="length of each latency run (default 10 s)"
    )
    parser.add_argument(
        "--latency-warmup", type=int, default=20, help="messages sent first in each latency run (default 20)"
    )
    parser.add_argument(
        "--latency-poll-interval",
        type=float,
        default=1.0,
        help="worker poll interval in the latency runs (default 1 s: only a wake-up can beat it)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments()
    run_main(lambda: main(arguments))
