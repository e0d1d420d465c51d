"""Two provider outcomes beyond paid/failed: a payment held for the provider's fraud review, and
one the customer approved that paycore must capture (PayPal) right after the webhook says so."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.money import Money
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.capture import capture_authorized
from paycore.payments.inbox import apply_stored_event, store_event, synthetic_payload
from paycore.payments.models import EventResult, PaymentAttempt
from paycore.payments.providers.base import NeutralEvent, NeutralKind, ProviderAccount
from paycore.payments.providers.registry import build_registry
from paycore.payments.reconcile import next_check_delay, reconcile_open_payments
from tests.flows.helpers import Shop, buy, confirm, create_product, open_shop, order


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def apply(db: Database, settings: Settings, shop: Shop, event: NeutralEvent) -> EventResult | None:
    registry = build_registry(settings, db)
    event_id = await store_event(
        db, tenant_id=shop.tenant_id, provider="sandbox", event=event, payload=synthetic_payload(event)
    )
    assert event_id is not None
    return await apply_stored_event(db, registry, settings, event_id)


def event_for(bought: dict[str, object], kind: NeutralKind, event_id: str) -> NeutralEvent:
    attempt_id = str(bought["payment"]["id"])  # type: ignore[index]
    return NeutralEvent(
        provider_event_id=event_id,
        type=kind.value,
        kind=kind,
        livemode=False,
        merchant_reference=attempt_id,
        amount=Money(1500, "EUR"),
    )


class TestFraudReview:
    async def test_held_payment_is_not_paid_is_alerted_then_paid_when_the_merchant_approves(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1500)
        bought = await buy(client, shop, product["id"])

        held = await apply(db, settings, shop, event_for(bought, NeutralKind.PAYMENT_NEEDS_REVIEW, "e1"))
        assert held is EventResult.APPLIED
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "pending_payment"
        async with db.session(write=False) as session:
            alerts = list(
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.channel == OutboxChannel.OPS_ALERT)
                )
            )
        assert [alert.payload["code"] for alert in alerts] == ["payment_under_review"]

        approved = await apply(db, settings, shop, event_for(bought, NeutralKind.PAYMENT_SUCCEEDED, "e2"))
        assert approved is EventResult.APPLIED
        assert (await order(client, shop, bought["order"]["id"]))["status"] in {"paid", "fulfilled"}

    async def test_a_review_notice_after_payment_changes_nothing(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1500)
        bought = await buy(client, shop, product["id"])
        await apply(db, settings, shop, event_for(bought, NeutralKind.PAYMENT_SUCCEEDED, "e1"))
        late = await apply(db, settings, shop, event_for(bought, NeutralKind.PAYMENT_NEEDS_REVIEW, "e2"))
        assert late is EventResult.IGNORED


class TestCaptureAfterApproval:
    async def test_an_approval_is_captured_and_applied_once(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1500)
        bought = await buy(client, shop, product["id"])
        # The customer completed the payment at the provider; its own webhook is lost.
        await confirm(client, bought["payment"]["id"], bad_signature=True)
        registry = build_registry(settings, db)
        async with db.session(write=False) as session:
            provider_ref = await session.scalar(
                select(PaymentAttempt.provider_ref).where(PaymentAttempt.id == bought["payment"]["id"])
            )
        approval = NeutralEvent(
            provider_event_id="approved-1",
            type="checkout.approved",
            kind=NeutralKind.PAYMENT_AUTHORIZED,
            livemode=False,
            payment_ref=provider_ref,
        )
        account = ProviderAccount(tenant_id=shop.tenant_id, tenant_slug=shop.slug, livemode=False)

        assert await capture_authorized(
            db, registry, settings, account=account, provider_name="sandbox", event=approval
        )
        assert (await order(client, shop, bought["order"]["id"]))["status"] in {"paid", "fulfilled"}
        # A second approval notice finds the attempt settled and asks the provider nothing.
        assert not await capture_authorized(
            db, registry, settings, account=account, provider_name="sandbox", event=approval
        )


class TestReconcileBackoff:
    async def test_an_open_attempt_is_asked_again_later_each_time(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1500)
        await buy(client, shop, product["id"])
        registry = build_registry(settings, db)
        start = utcnow() + timedelta(minutes=settings.reconcile_after_minutes + 1)

        async def checks() -> tuple[int, object]:
            async with db.session(write=False) as session:
                attempt = await session.scalar(select(PaymentAttempt))
            assert attempt is not None
            return attempt.reconcile_checks, attempt.next_reconcile_at

        await reconcile_open_payments(db, registry, settings, now=start)
        assert await checks() == (1, start + timedelta(minutes=settings.reconcile_after_minutes))
        await reconcile_open_payments(db, registry, settings, now=start + timedelta(minutes=1))
        assert (await checks())[0] == 1  # not due yet: not asked
        second = start + timedelta(minutes=settings.reconcile_after_minutes)
        await reconcile_open_payments(db, registry, settings, now=second)
        assert await checks() == (2, second + timedelta(minutes=2 * settings.reconcile_after_minutes))

    def test_the_wait_doubles_up_to_six_hours(self, settings: Settings) -> None:
        waits = [next_check_delay(settings, checks) for checks in range(8)]
        assert waits[:3] == [timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40)]
        assert waits[-1] == timedelta(hours=6)

    async def test_a_failed_attempt_is_paid_if_the_customer_pays_after_all(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1500)
        bought = await buy(client, shop, product["id"])
        await apply(db, settings, shop, event_for(bought, NeutralKind.PAYMENT_FAILED, "declined"))
        # The sandbox payment then succeeds at the provider, and its webhook is lost.
        await confirm(client, bought["payment"]["id"], bad_signature=True)
        registry = build_registry(settings, db)
        later = utcnow() + timedelta(minutes=settings.reconcile_after_minutes + 1)
        assert await reconcile_open_payments(db, registry, settings, now=later) == 1
        assert (await order(client, shop, bought["order"]["id"]))["status"] in {"paid", "fulfilled"}
