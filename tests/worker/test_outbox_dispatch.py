"""Outbox delivery: claims, schedules, dead rows, replay, ordering, shutdown — and real email."""

from __future__ import annotations

import asyncio
import io
import json
import random
import socket
from datetime import timedelta
from email import message_from_bytes
from email.message import Message

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.logging import configure_logging
from paycore.outbox.channels.base import DeliveryOutcome
from paycore.outbox.channels.email import EmailChannel
from paycore.outbox.dispatch import (
    NOTIFICATION_DELAYS,
    WEBHOOK_DELAYS,
    OutboxDispatcher,
    claim_due_messages,
    next_retry,
    record_outcome,
)
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.outbox.service import enqueue
from paycore.outbox.service_admin import replay
from tests.conftest import make_settings
from tests.flows.helpers import buy, confirm, create_product, deliver, open_shop, verify_test_recipient

HOUR = timedelta(hours=1)


class Recorder:
    """A channel that records what it is given and answers what the test says."""

    def __init__(
        self, channel: OutboxChannel, outcome: DeliveryOutcome | None = None, delay: float = 0
    ) -> None:
        self.channel = channel
        self.outcome = outcome or DeliveryOutcome.delivered()
        self.delay = delay
        self.seen: list[str] = []

    async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
        self.seen.append(message.id)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.outcome


async def add_rows(db: Database, tenant_id: str, count: int, *, ordering_key: str | None = None) -> list[str]:
    async with db.session() as session:
        for index in range(count):
            await enqueue(
                session,
                tenant_id=tenant_id,
                livemode=False,
                channel=OutboxChannel.OPS_ALERT,
                topic="test",
                dedupe_key=f"test:{index}:{random.random()}",
                payload={"code": "test", "message": str(index)},
                ordering_key=ordering_key,
            )
            await asyncio.sleep(0.001)  # distinct creation times, like separate commits
        rows = await session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.tenant_id == tenant_id)
            .order_by(OutboxMessage.created_at)
        )
        return list(rows)


async def row(db: Database, message_id: str) -> OutboxMessage:
    async with db.session(write=False) as session:
        found = await session.get(OutboxMessage, message_id, populate_existing=True)
    assert found is not None
    return found


async def make_due(db: Database, message_id: str) -> None:
    async with db.session() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def dispatcher(
    db: Database, settings: Settings, channel: Recorder, worker_id: str = "w1"
) -> OutboxDispatcher:
    return OutboxDispatcher(db, {channel.channel: channel}, settings, worker_id=worker_id)


class TestSchedules:
    def test_notifications_and_webhooks_follow_their_schedules(self) -> None:
        rng = random.Random(7)
        assert [
            next_retry(OutboxChannel.EMAIL, n, retry_after=None, rng=rng) is None for n in range(1, 6)
        ] == [
            False,
            False,
            False,
            False,
            True,
        ]
        assert len(WEBHOOK_DELAYS) == 7
        assert next_retry(OutboxChannel.MERCHANT_WEBHOOK, 8, retry_after=None, rng=rng) is None
        first = next_retry(OutboxChannel.MERCHANT_WEBHOOK, 1, retry_after=None, rng=rng)
        assert first is not None
        assert timedelta(seconds=4.5) <= first <= timedelta(seconds=5.5)  # 5 s ± 10 % jitter

    def test_retry_after_wins_when_longer(self) -> None:
        delay = next_retry(OutboxChannel.EMAIL, 1, retry_after=600, rng=random.Random(1))
        assert delay == timedelta(seconds=600)


class TestDelivery:
    async def test_failures_retry_on_schedule_then_die_and_replay_revives(
        self, db: Database, settings: Settings
    ) -> None:
        shop = await open_shop(db)
        (message_id,) = await add_rows(db, shop.tenant_id, 1)
        failing = Recorder(OutboxChannel.OPS_ALERT, DeliveryOutcome.failed("smtp down"))
        work = dispatcher(db, settings, failing)
        for attempt, delay in enumerate(NOTIFICATION_DELAYS, start=1):
            before = utcnow()
            assert await work.process_batch(asyncio.Event()) == 1
            state = await row(db, message_id)
            assert (state.status, state.attempts, state.last_error) == (
                OutboxStatus.RETRYING,
                attempt,
                "smtp down",
            )
            assert state.locked_by is None
            assert before + delay * 0.89 <= state.next_attempt_at <= utcnow() + delay * 1.11
            assert await work.process_batch(asyncio.Event()) == 0  # not due yet
            await make_due(db, message_id)
        assert await work.process_batch(asyncio.Event()) == 1
        assert (await row(db, message_id)).status is OutboxStatus.DEAD

        async with db.session() as session:
            assert await replay(session, message_id=message_id) == 1
        revived = await row(db, message_id)
        assert (revived.status, revived.attempts) == (OutboxStatus.PENDING, 0)
        work.channels = {OutboxChannel.OPS_ALERT: Recorder(OutboxChannel.OPS_ALERT)}
        assert await work.process_batch(asyncio.Event()) == 1
        assert (await row(db, message_id)).status is OutboxStatus.SENT

    async def test_a_permanent_failure_is_dead_at_once(self, db: Database, settings: Settings) -> None:
        shop = await open_shop(db)
        (message_id,) = await add_rows(db, shop.tenant_id, 1)
        bounced = Recorder(OutboxChannel.OPS_ALERT, DeliveryOutcome.failed("no such mailbox", permanent=True))
        await dispatcher(db, settings, bounced).process_batch(asyncio.Event())
        state = await row(db, message_id)
        assert (state.status, state.attempts) == (OutboxStatus.DEAD, 1)

    async def test_a_channel_that_raises_does_not_lose_the_row(
        self, db: Database, settings: Settings
    ) -> None:
        shop = await open_shop(db)
        (message_id,) = await add_rows(db, shop.tenant_id, 1)

        class Broken(Recorder):
            async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
                raise RuntimeError("bug in a channel")

        await dispatcher(db, settings, Broken(OutboxChannel.OPS_ALERT)).process_batch(asyncio.Event())
        state = await row(db, message_id)
        assert state.status is OutboxStatus.RETRYING
        assert "bug in a channel" in (state.last_error or "")


class TestClaims:
    async def test_a_claimed_row_is_not_claimed_again_until_the_claim_runs_out(
        self, db: Database, settings: Settings
    ) -> None:
        shop = await open_shop(db)
        ids = await add_rows(db, shop.tenant_id, 3)
        first = await claim_due_messages(
            db, worker_id="a", limit=10, claim_for=timedelta(seconds=60), order_wait=HOUR
        )
        again = await claim_due_messages(
            db, worker_id="b", limit=10, claim_for=timedelta(seconds=60), order_wait=HOUR
        )
        later = await claim_due_messages(
            db,
            worker_id="b",
            limit=10,
            claim_for=timedelta(seconds=60),
            order_wait=HOUR,
            now=utcnow() + timedelta(seconds=61),
        )
        assert sorted(message.id for message in first) == sorted(ids)
        assert again == []
        assert sorted(message.id for message in later) == sorted(ids)  # the first worker "died"
        assert {message.locked_by for message in later} == {"b"}

    async def test_one_orders_events_go_out_in_order(self, db: Database, settings: Settings) -> None:
        shop = await open_shop(db)
        first, second = await add_rows(db, shop.tenant_id, 2, ordering_key="order:ord_1")
        claimed = await claim_due_messages(
            db, worker_id="a", limit=10, claim_for=timedelta(seconds=1), order_wait=HOUR
        )
        assert [message.id for message in claimed] == [first]
        # The first fails and waits for its retry: the second still waits behind it...
        await record_outcome(
            db, claimed[0], DeliveryOutcome.failed("down"), worker_id="a", rng=random.Random(1)
        )
        assert (await row(db, first)).status is OutboxStatus.RETRYING
        assert (
            await claim_due_messages(
                db,
                worker_id="a",
                limit=10,
                claim_for=timedelta(seconds=1),
                order_wait=HOUR,
                now=utcnow() + timedelta(seconds=2),
            )
            == []
        )
        # ...but not forever: past the bound it goes anyway.
        late = await claim_due_messages(
            db,
            worker_id="a",
            limit=10,
            claim_for=timedelta(seconds=1),
            order_wait=timedelta(seconds=0),
            now=utcnow() + timedelta(seconds=2),
        )
        assert [message.id for message in late] == [second]


class TestShutdown:
    async def test_rows_in_hand_are_handed_back_when_stopping(self, db: Database) -> None:
        settings = make_settings(
            database_url=db.engine.url.render_as_string(hide_password=False), worker_shutdown_seconds=0.1
        )
        shop = await open_shop(db)
        ids = await add_rows(db, shop.tenant_id, 3)
        slow = Recorder(OutboxChannel.OPS_ALERT, delay=30)
        stop = asyncio.Event()
        batch = asyncio.create_task(dispatcher(db, settings, slow).process_batch(stop))
        await asyncio.sleep(0.2)
        stop.set()
        assert await asyncio.wait_for(batch, timeout=5) == 3
        for message_id in ids:
            state = await row(db, message_id)
            assert (state.status, state.attempts, state.locked_by) == (OutboxStatus.PENDING, 0, None)


class TestEmail:
    async def test_the_confirmation_email_reaches_a_real_smtp_server(
        self, db: Database, client: httpx.AsyncClient, smtp_server: tuple[int, list[Message]]
    ) -> None:
        port, received = smtp_server
        settings = make_settings(
            database_url=db.engine.url.render_as_string(hide_password=False),
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            smtp_from="Shop <shop@example.com>",
        )
        shop = await open_shop(db)
        product = await create_product(client, shop, price=4200)
        await verify_test_recipient(client, shop)  # a test-mode email goes only to a verified address
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"])
        await deliver(db, make_settings(database_url=settings.database_url), client)
        channels = {OutboxChannel.EMAIL: EmailChannel(settings, db)}
        await OutboxDispatcher(db, channels, settings, worker_id="w").process_batch(asyncio.Event())

        (mail,) = received
        assert mail["To"] == "ada@example.com"
        assert mail["From"] == "Shop <shop@example.com>"
        assert bought["order"]["number"] in mail["Subject"]
        parts = {
            part.get_content_type(): part.get_payload(decode=True).decode()
            for part in mail.walk()
            if not part.is_multipart()
        }
        assert "42.00 EUR" in parts["text/plain"]
        assert "<strong>42.00 EUR</strong>" in parts["text/html"]
        async with db.session(write=False) as session:
            email_row = await session.scalar(
                select(OutboxMessage).where(OutboxMessage.channel == OutboxChannel.EMAIL)
            )
        assert email_row is not None
        assert email_row.status is OutboxStatus.SENT

    async def test_a_resent_email_carries_the_same_message_id(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        """Finding 16: a server that took the mail but whose acknowledgement was lost (here: it
        keeps the data, then answers 451) gets it again on the retry — as the same mail."""
        received: list[Message] = []

        class LosesTheFirstAcknowledgement:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                received.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
                return "451 Try again later" if len(received) == 1 else "250 OK"

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        controller = Controller(LosesTheFirstAcknowledgement(), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            settings = make_settings(
                database_url=db.engine.url.render_as_string(hide_password=False),
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_security="none",
                smtp_from="Shop <shop@example.com>",
            )
            shop = await open_shop(db)
            await verify_test_recipient(client, shop)
            product = await create_product(client, shop)
            bought = await buy(client, shop, product["id"])
            await confirm(client, bought["payment"]["id"])
            await deliver(db, make_settings(database_url=settings.database_url), client)
            async with db.session(write=False) as session:
                email_id = await session.scalar(
                    select(OutboxMessage.id).where(OutboxMessage.channel == OutboxChannel.EMAIL)
                )
            assert email_id is not None
            worker = OutboxDispatcher(
                db, {OutboxChannel.EMAIL: EmailChannel(settings, db)}, settings, worker_id="w"
            )
            await worker.process_batch(asyncio.Event())
            assert (await row(db, email_id)).status is OutboxStatus.RETRYING
            await make_due(db, email_id)
            await worker.process_batch(asyncio.Event())
        finally:
            controller.stop()

        assert (await row(db, email_id)).status is OutboxStatus.SENT
        first, second = received
        assert first["Message-ID"] == second["Message-ID"] == f"<{email_id}@example.com>"

    async def test_without_smtp_the_email_is_logged(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        stream = io.StringIO()
        configure_logging(level="INFO", json=True, stream=stream)
        shop = await open_shop(db)
        product = await create_product(client, shop)
        await verify_test_recipient(client, shop)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"])
        await deliver(db, settings, client)
        await OutboxDispatcher(
            db, {OutboxChannel.EMAIL: EmailChannel(settings, db)}, settings, worker_id="w"
        ).process_batch(asyncio.Event())
        logged = [json.loads(line) for line in stream.getvalue().splitlines() if '"email_logged"' in line]
        assert len(logged) == 1
        assert logged[0]["to"] == "ada@example.com"
        assert bought["order"]["number"] in logged[0]["subject"]

    async def test_a_merchant_template_overrides_the_built_in_one(
        self,
        db: Database,
        client: httpx.AsyncClient,
        smtp_server: tuple[int, list[Message]],
        tmp_path: object,
    ) -> None:
        from pathlib import Path

        port, received = smtp_server
        shop = await open_shop(db)
        override = Path(str(tmp_path)) / shop.slug
        override.mkdir(parents=True)
        (override / "order_paid.subject.txt").write_text("Thanks from {{ shop }} for {{ order.number }}")
        settings = make_settings(
            database_url=db.engine.url.render_as_string(hide_password=False),
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            email_templates_dir=str(tmp_path),
        )
        product = await create_product(client, shop)
        await verify_test_recipient(client, shop)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"])
        await deliver(db, make_settings(database_url=settings.database_url), client)
        await OutboxDispatcher(
            db, {OutboxChannel.EMAIL: EmailChannel(settings, db)}, settings, worker_id="w"
        ).process_batch(asyncio.Event())
        (mail,) = received
        assert mail["Subject"] == f"Thanks from Acme Shop for {bought['order']['number']}"


class TestOpsAlerts:
    async def test_alerts_reach_the_tenant_owners_and_the_operator(
        self, db: Database, client: httpx.AsyncClient, smtp_server: tuple[int, list[Message]]
    ) -> None:
        from paycore.auth.service import create_owner
        from paycore.outbox.channels.email import OpsAlertChannel
        from paycore.tenancy.models import Tenant
        from tests.factories import TEST_ACTOR

        port, received = smtp_server
        settings = make_settings(
            database_url=db.engine.url.render_as_string(hide_password=False),
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            ops_alert_email="ops@platform.example",
        )
        shop = await open_shop(db)
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            await create_owner(
                session,
                tenant=tenant,
                email="owner@shop.example",
                password="violet-orbit-tundra-42",
                actor=TEST_ACTOR,
            )
        product = await create_product(client, shop, price=2000)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"], amount_delta=-1)  # an amount mismatch: an ops alert
        await deliver(db, make_settings(database_url=settings.database_url), client)
        email = EmailChannel(settings, db)
        channels = {OutboxChannel.OPS_ALERT: OpsAlertChannel(settings, email, db)}
        await OutboxDispatcher(db, channels, settings, worker_id="w").process_batch(asyncio.Event())
        (mail,) = received
        assert mail["To"] == "owner@shop.example, ops@platform.example"
        assert "amount_mismatch" in mail["Subject"]
