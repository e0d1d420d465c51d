"""Workers as real processes on PostgreSQL: killed mid-batch, racing each other, woken by NOTIFY."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.ids import new_id
from paycore.merchant_webhooks.models import WebhookEndpoint
from paycore.merchant_webhooks.signing import new_secret
from paycore.migrations import upgrade_to_head
from paycore.outbox.channels.base import DeliveryOutcome
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.outbox.service import enqueue
from paycore.worker.loop import PeriodicJob, Worker
from paycore.worker.wakeup import PostgresWakeup
from tests.conftest import make_settings
from tests.factories import make_tenant

pytestmark = pytest.mark.parametrize("fresh_database_url", ["postgresql"], indirect=True)


class Received:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()
        self.delay = 0.0


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A real HTTP endpoint in this process that records each webhook-id it accepts."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            if received.delay:
                time.sleep(received.delay)
            with received.lock:
                received.ids.append(self.headers["webhook-id"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    finally:
        server.shutdown()
        server.server_close()


async def prepared(url: str) -> tuple[Settings, Database, str]:
    settings = make_settings(database_url=url)
    database = Database(create_engine(settings))
    await upgrade_to_head(database.engine)
    async with database.session() as session:
        tenant = await make_tenant(session)
    return settings, database, tenant.id


async def preload_webhooks(database: Database, tenant_id: str, endpoint_url: str, count: int) -> list[str]:
    """`count` due merchant events for one endpoint; returns their event ids."""
    now = utcnow()
    event_ids = [new_id("whevt") for _ in range(count)]
    async with database.session() as session:
        session.add(
            WebhookEndpoint(tenant_id=tenant_id, livemode=False, url=endpoint_url, secret=new_secret())
        )
        await session.execute(
            insert(OutboxMessage),
            [
                {
                    "id": new_id("msg"),
                    "tenant_id": tenant_id,
                    "livemode": False,
                    "channel": OutboxChannel.MERCHANT_WEBHOOK,
                    "topic": "order.paid",
                    "dedupe_key": f"order.paid:{event_id}",
                    "payload": {"id": event_id, "type": "order.paid", "data": {"object": {}}},
                    "status": OutboxStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for event_id in event_ids
            ],
        )
    return event_ids


async def open_rows(database: Database) -> int:
    async with database.session(write=False) as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status != OutboxStatus.SENT)
            )
            or 0
        )


def start_worker(url: str, tmp_path: Path, **env: str) -> subprocess.Popen[bytes]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("PAYCORE_")}
    # The worker's own log, kept beside the test for when it fails; the child holds its own handle.
    with open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "paycore", "worker"],
            env={
                **base,
                "PAYCORE_DATABASE_URL": url,
                "PAYCORE_ENV": "test",
                "PAYCORE_CHECKOUT_TOKEN_SECRET": "test-only-9fK2mQ7xL4vB8nR1tY6wZ3cD5hJ0sP",
                "PAYCORE_LOG_LEVEL": "WARNING",
                # The receiver listens on 127.0.0.1: the explicit development setting lets it in.
                "PAYCORE_ALLOW_PRIVATE_TARGETS": "true",
                **env,
            },
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )


async def wait_until_drained(database: Database, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    left = await open_rows(database)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        left = await open_rows(database)
    return left


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


class TestCrash:
    async def test_rows_of_a_killed_worker_are_delivered_by_another(
        self, fresh_database_url: str, receiver: tuple[str, Received], tmp_path: Path
    ) -> None:
        endpoint_url, received = receiver
        received.delay = 0.05  # slow enough that the kill lands mid-batch
        _, database, tenant_id = await prepared(fresh_database_url)
        event_ids = await preload_webhooks(database, tenant_id, endpoint_url, 200)
        first = start_worker(fresh_database_url, tmp_path, PAYCORE_WORKER_CLAIM_SECONDS="5")
        try:
            deadline = time.monotonic() + 30
            # The receiver counts in another thread: poll it.
            while len(received.ids) < 20 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed_after = len(received.ids)
            assert 0 < killed_after < len(event_ids)
            received.delay = 0
            second = start_worker(fresh_database_url, tmp_path, PAYCORE_WORKER_CLAIM_SECONDS="5")
            try:
                assert await wait_until_drained(database, 60) == 0
            finally:
                stop_all([second])
            # Every event arrived; a few the killed worker had in flight may have arrived twice
            # (at least once, never lost), and every repeat carries the same webhook-id.
            assert set(received.ids) == set(event_ids)
        finally:
            stop_all([first])
            await database.dispose()


class TestTwoWorkers:
    async def test_two_thousand_rows_each_delivered_once(
        self, fresh_database_url: str, receiver: tuple[str, Received], tmp_path: Path
    ) -> None:
        endpoint_url, received = receiver
        _, database, tenant_id = await prepared(fresh_database_url)
        event_ids = await preload_webhooks(database, tenant_id, endpoint_url, 2000)
        workers = [start_worker(fresh_database_url, tmp_path) for _ in range(2)]
        try:
            assert await wait_until_drained(database, 120) == 0
        finally:
            stop_all(workers)
            await database.dispose()
        assert all(worker.returncode == 0 for worker in workers)
        assert len(received.ids) == 2000
        assert sorted(received.ids) == sorted(event_ids)


class TestNotify:
    async def test_a_listening_worker_delivers_long_before_its_next_poll(
        self, fresh_database_url: str
    ) -> None:
        settings, database, tenant_id = await prepared(fresh_database_url)
        delivered = asyncio.Event()

        class Channel:
            channel = OutboxChannel.OPS_ALERT

            async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
                delivered.set()
                return DeliveryOutcome.delivered()

        wakeup = PostgresWakeup(settings)
        worker = Worker(
            database,
            jobs=[],
            poll_interval=60,
            queues=[
                OutboxDispatcher(database, {OutboxChannel.OPS_ALERT: Channel()}, settings, worker_id="w")
            ],
            wakeup=wakeup,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.wait_for(wakeup.listening.wait(), timeout=10)
            await asyncio.sleep(0.2)  # the worker is now asleep for up to 60 s
            async with database.session() as session:
                await enqueue(
                    session,
                    tenant_id=tenant_id,
                    livemode=False,
                    channel=OutboxChannel.OPS_ALERT,
                    topic="test",
                    dedupe_key="notify-test",
                    payload={"code": "x", "message": "y"},
                )
            await asyncio.wait_for(delivered.wait(), timeout=5)
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=10)
            await database.dispose()


class TestPeriodicJobsWithTwoWorkers:
    async def test_each_job_runs_once_per_period(self, fresh_database_url: str) -> None:
        settings, database, _ = await prepared(fresh_database_url)
        other = Database(create_engine(settings))
        runs: list[str] = []

        async def job(_: Database) -> None:
            runs.append("ran")

        jobs = [PeriodicJob(name="once", period=timedelta(minutes=10), run=job)]
        workers = [Worker(database, jobs=jobs, poll_interval=1), Worker(other, jobs=jobs, poll_interval=1)]
        try:
            for _ in range(5):
                await asyncio.gather(*(worker.run_due_jobs() for worker in workers))
        finally:
            await other.dispose()
            await database.dispose()
        assert runs == ["ran"]
