"""Every odd case of DESIGN.md §4–5 ends in the state it names, with no 5xx and nothing lost."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.orders.expiry import expire_due_orders
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.inbox import retry_unapplied_events, store_event
from paycore.payments.models import EventResult, PaymentEvent
from paycore.payments.providers.registry import build_registry
from paycore.payments.reconcile import reconcile_open_payments
from paycore.payments.refunds import submit_pending_refunds
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.delivery import deliver_due_webhooks
from paycore.sandbox.signing import SIGNATURE_HEADER, sign
from tests.flows.helpers import Shop, buy, confirm, create_product, deliver, open_shop, order


def signed(
    settings: Settings, shop: Shop, payload: dict[str, Any] | bytes, *, at: int | None = None
) -> dict[str, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = sign(webhook_secret(settings, shop.tenant_id), at or int(time.time()), body)
    return {"content": body, "headers": {"content-type": "application/json", SIGNATURE_HEADER: header}}


def payment_event(attempt_id: str, *, event_id: str, amount: int, currency: str = "EUR") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {
            "payment": {
                "id": "sbpay_x",
                "merchant_reference": attempt_id,
                "amount": amount,
                "currency": currency,
            }
        },
    }


async def events(db: Database, tenant_id: str) -> list[PaymentEvent]:
    async with db.session(write=False) as session:
        return list(await session.scalars(select(PaymentEvent).where(PaymentEvent.tenant_id == tenant_id)))


async def outbox_topics(db: Database, tenant_id: str, channel: OutboxChannel) -> list[str]:
    async with db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxMessage.topic).where(
                OutboxMessage.tenant_id == tenant_id, OutboxMessage.channel == channel
            )
        )
        return sorted(rows)


def rejections(reason: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "paycore_webhook_rejections_total", {"provider": "sandbox", "reason": reason}
        )
        or 0
    )


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


class TestRefusedWebhooks:
    async def test_bad_signature_changes_nothing_and_is_counted(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop)
        bought = await buy(client, shop, product["id"])
        before = rejections("bad_signature")
        await confirm(client, bought["payment"]["id"], bad_signature=True)
        await deliver(db, settings, client)
        assert rejections("bad_signature") == before + 2
        assert await events(db, shop.tenant_id) == []
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "pending_payment"

    @pytest.mark.parametrize("body", [b"<xml>not json</xml>", b"[" * 200_000], ids=["xml", "too-deep"])
    async def test_body_that_is_not_json_is_refused(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, body: bytes
    ) -> None:
        # Signed, so it reaches the parser: JSON nested deeper than it goes was a 500. Sent as
        # text/plain, past the JSON depth check in front, so the adapter's own guard is tested.
        request = signed(settings, shop, body)
        request["headers"]["content-type"] = "text/plain"
        response = await client.post(f"/webhooks/sandbox/{shop.slug}", **request)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_signature_invalid"
        assert "not JSON" in response.json()["error"]["message"]
        assert await events(db, shop.tenant_id) == []

    # Ten seconds past the edge: a second passing mid-test must not bring 301 back to 300.
    @pytest.mark.parametrize("skew", [-310, 310])
    async def test_timestamps_outside_five_minutes_are_refused(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, skew: int
    ) -> None:
        request = signed(
            settings, shop, payment_event("pay_x", event_id="sbevt_old", amount=1), at=int(time.time()) + skew
        )
        response = await client.post(f"/webhooks/sandbox/{shop.slug}", **request)
        assert response.status_code == 400
        assert await events(db, shop.tenant_id) == []

    async def test_missing_signature_unknown_tenant_unknown_provider(
        self, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        body = json.dumps(payment_event("pay_x", event_id="e", amount=1)).encode()
        assert (await client.post(f"/webhooks/sandbox/{shop.slug}", content=body)).status_code == 400
        request = signed(settings, shop, body)
        unknown_tenant = await client.post("/webhooks/sandbox/no-such-shop", **request)
        assert (unknown_tenant.status_code, unknown_tenant.json()["error"]["code"]) == (
            404,
            "tenant_not_found",
        )
        unknown_provider = await client.post(f"/webhooks/paypal-ish/{shop.slug}", **request)
        assert (unknown_provider.status_code, unknown_provider.json()["error"]["code"]) == (
            404,
            "unknown_provider",
        )

    async def test_another_tenants_secret_is_refused(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        other = await open_shop(db)
        request = signed(settings, other, payment_event("pay_x", event_id="e2", amount=1))
        assert (await client.post(f"/webhooks/sandbox/{shop.slug}", **request)).status_code == 400


class TestOddPayments:
    async def test_unknown_order_is_stored_unmatched_and_alerted(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        request = signed(settings, shop, payment_event("pay_nobody", event_id="sbevt_orphan", amount=500))
        response = await client.post(f"/webhooks/sandbox/{shop.slug}", **request)
        assert response.status_code == 200
        assert response.json()["result"] == "unmatched"
        (event,) = await events(db, shop.tenant_id)
        assert event.result is EventResult.UNMATCHED
        assert await outbox_topics(db, shop.tenant_id, OutboxChannel.OPS_ALERT) == ["unmatched_payment"]

    async def test_amount_mismatch_goes_to_review_with_the_money_recorded(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=2000, stock=5)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"], amount_delta=-500)
        await deliver(db, settings, client)
        detail = await order(client, shop, bought["order"]["id"])
        assert detail["status"] == "needs_review"
        assert detail["review_reason"] == "amount_mismatch"
        assert detail["amount_paid"] == 1500
        assert detail["payments"][0]["status"] == "succeeded"
        results = sorted(event.result.value for event in await events(db, shop.tenant_id) if event.result)
        assert results == ["ignored", "mismatch"]  # "processing" changes nothing; "succeeded" mismatches
        assert await outbox_topics(db, shop.tenant_id, OutboxChannel.OPS_ALERT) == ["amount_mismatch"]
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["on_hand"], stock["reserved"]) == (5, 0)  # nothing sold, nothing held

    async def test_a_payment_in_another_currency_goes_to_review_and_is_never_paid(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        """Finding 17: the right number in the wrong currency (2000 USD for a 2000 EUR order) is
        not the order's money: review and an ops alert, never `paid`, nothing counted as paid."""
        product = await create_product(client, shop, price=2000, currency="EUR", stock=5)
        bought = await buy(client, shop, product["id"])
        request = signed(
            settings,
            shop,
            payment_event(bought["payment"]["id"], event_id="sbevt_usd", amount=2000, currency="USD"),
        )
        response = await client.post(f"/webhooks/sandbox/{shop.slug}", **request)
        assert (response.status_code, response.json()["result"]) == (200, "mismatch")

        detail = await order(client, shop, bought["order"]["id"])
        assert (detail["status"], detail["review_reason"], detail["paid_at"]) == (
            "needs_review",
            "amount_mismatch",
            None,
        )
        assert detail["amount_paid"] == 0  # dollars are not euros
        assert await outbox_topics(db, shop.tenant_id, OutboxChannel.OPS_ALERT) == ["amount_mismatch"]
        merchant_events = await outbox_topics(db, shop.tenant_id, OutboxChannel.MERCHANT_WEBHOOK)
        assert "order.paid" not in merchant_events
        assert "order.needs_review" in merchant_events
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["on_hand"], stock["reserved"]) == (5, 0)  # nothing sold

    async def test_the_sandbox_delay_switch_holds_the_webhooks_back_until_their_time(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        """Finding 17: `chaos.delay_seconds` keeps the provider's webhooks queued for that long:
        nothing moves before, and the order is paid once they are due."""
        product = await create_product(client, shop)
        bought = await buy(client, shop, product["id"])
        confirmed = await confirm(client, bought["payment"]["id"], delay_seconds=120)
        assert confirmed.status_code == 200, confirmed.text

        assert await deliver_due_webhooks(db, settings, client, now=utcnow() + timedelta(seconds=110)) == 0
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "pending_payment"
        assert await events(db, shop.tenant_id) == []

        assert await deliver_due_webhooks(db, settings, client, now=utcnow() + timedelta(seconds=121)) == 2
        paid = await order(client, shop, bought["order"]["id"])
        assert paid["paid_at"] is not None
        assert paid["status"] == "fulfilled"  # a physical product's stock is taken at once

    async def test_declined_payment_leaves_the_order_payable(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"], outcome="decline")
        await deliver(db, settings, client)
        detail = await order(client, shop, bought["order"]["id"])
        assert detail["status"] == "pending_payment"
        assert detail["payments"][0]["status"] == "failed"
        assert "payment.failed" in await outbox_topics(db, shop.tenant_id, OutboxChannel.MERCHANT_WEBHOOK)


class TestLatePayments:
    async def test_late_payment_with_stock_left_pays_the_expired_order(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=3)
        bought = await buy(client, shop, product["id"])
        assert await expire_due_orders(db, now=utcnow() + timedelta(minutes=31)) == 1
        expired = await order(client, shop, bought["order"]["id"])
        assert expired["status"] == "expired"
        assert expired["payments"][0]["status"] == "canceled"
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert stock["reserved"] == 0

        await confirm(client, bought["payment"]["id"])
        await deliver(db, settings, client)
        paid = await order(client, shop, bought["order"]["id"])
        assert paid["status"] == "fulfilled"
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["on_hand"], stock["reserved"]) == (2, 0)

    async def test_late_payment_without_stock_goes_to_review_and_is_refunded(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1200, stock=1)
        first = await buy(client, shop, product["id"])
        await expire_due_orders(db, now=utcnow() + timedelta(minutes=31))
        second = await buy(client, shop, product["id"])  # takes the last unit
        await confirm(client, second["payment"]["id"])
        await confirm(client, first["payment"]["id"])  # the customer of the expired order pays anyway
        await deliver(db, settings, client)

        late = await order(client, shop, first["order"]["id"])
        assert late["status"] == "needs_review"
        assert late["review_reason"] == "late_payment_out_of_stock"
        assert [r["status"] for r in late["refunds"]] == ["pending"]

        registry = build_registry(settings, db)
        assert await submit_pending_refunds(db, registry) == 1
        await deliver(db, settings, client)  # the sandbox's refund.succeeded webhook: a no-op now
        refunded = await order(client, shop, first["order"]["id"])
        assert refunded["status"] == "refunded"
        assert refunded["amount_refunded"] == 1200
        assert [r["status"] for r in refunded["refunds"]] == ["succeeded"]
        assert (await order(client, shop, second["order"]["id"]))["status"] == "fulfilled"

    async def test_a_second_payment_for_a_paid_order_is_refunded(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=700)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"])
        await deliver(db, settings, client)
        # The provider reports another successful charge for the same order (say, a double click).
        from paycore.orders.states import AttemptStatus
        from paycore.payments.models import PaymentAttempt

        async with db.session() as session:
            original = await session.get(PaymentAttempt, bought["payment"]["id"])
            assert original is not None
            session.add(
                PaymentAttempt(
                    id="pay_second",
                    tenant_id=shop.tenant_id,
                    livemode=False,
                    order_id=original.order_id,
                    provider="sandbox",
                    provider_ref="sbpay_second",
                    amount=700,
                    currency="EUR",
                    status=AttemptStatus.REQUIRES_ACTION,
                )
            )
        request = signed(settings, shop, payment_event("pay_second", event_id="sbevt_second", amount=700))
        assert (await client.post(f"/webhooks/sandbox/{shop.slug}", **request)).status_code == 200
        detail = await order(client, shop, bought["order"]["id"])
        assert detail["status"] == "fulfilled"
        assert [(r["amount"], r["kind"]) for r in detail["refunds"]] == [(700, "duplicate_payment")]
        assert "duplicate_payment" in await outbox_topics(db, shop.tenant_id, OutboxChannel.OPS_ALERT)


class TestRecovery:
    async def test_reconciliation_finds_a_payment_whose_webhooks_were_lost(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"], bad_signature=True)
        await deliver(db, settings, client)
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "pending_payment"

        registry = build_registry(settings, db)
        settled = await reconcile_open_payments(db, registry, settings, now=utcnow() + timedelta(minutes=11))
        assert settled == 1
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "fulfilled"
        again = await reconcile_open_payments(db, registry, settings, now=utcnow() + timedelta(minutes=12))
        assert again == 0

    async def test_an_event_stored_but_never_applied_is_applied_by_the_retry_job(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=800)
        bought = await buy(client, shop, product["id"])
        registry = build_registry(settings, db)
        payload = payment_event(bought["payment"]["id"], event_id="sbevt_crash", amount=800)
        # As if the process died right after committing the event to the inbox.
        event_id = await store_event(
            db,
            tenant_id=shop.tenant_id,
            provider="sandbox",
            event=registry.get("sandbox").to_neutral(payload, livemode=False),
            payload=payload,
        )
        assert event_id is not None
        assert await retry_unapplied_events(db, registry, settings, now=utcnow() + timedelta(seconds=10)) == 1
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "fulfilled"
        async with db.session(write=False) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(PaymentEvent)
                .where(PaymentEvent.result == EventResult.APPLIED)
            )
        assert count == 1


class TestRefunds:
    async def test_partial_then_full_refund(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=5000, kind="digital", stock=None)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"])
        await deliver(db, settings, client)
        order_id = bought["order"]["id"]
        access = (
            await client.get(
                "/v1/entitlements", params={"customer_email": "ada@example.com"}, headers=shop.secret
            )
        ).json()
        assert [e["product_id"] for e in access["data"]] == [product["id"]]

        partial = await client.post(
            f"/v1/orders/{order_id}/refunds", json={"amount": 2000}, headers=shop.secret
        )
        assert partial.status_code == 201, partial.text
        assert partial.json()["status"] == "succeeded"
        assert (await order(client, shop, order_id))["status"] == "partially_refunded"

        too_much = await client.post(
            f"/v1/orders/{order_id}/refunds", json={"amount": 3001}, headers=shop.secret
        )
        assert too_much.status_code == 400
        assert too_much.json()["error"]["code"] == "amount_too_large"
        assert too_much.json()["error"]["param"] == "amount"

        rest = await client.post(f"/v1/orders/{order_id}/refunds", json={}, headers=shop.secret)
        assert (rest.status_code, rest.json()["amount"]) == (201, 3000)
        detail = await order(client, shop, order_id)
        assert (detail["status"], detail["amount_refunded"]) == ("refunded", 5000)
        await deliver(db, settings, client)  # the provider's own refund webhooks change nothing more
        assert (await order(client, shop, order_id))["amount_refunded"] == 5000
        access = (
            await client.get(
                "/v1/entitlements", params={"customer_email": "ada@example.com"}, headers=shop.secret
            )
        ).json()
        assert access["data"] == []
        emails = await outbox_topics(db, shop.tenant_id, OutboxChannel.EMAIL)
        assert emails == ["email.order_paid", "email.refund_issued", "email.refund_issued"]

    async def test_unpaid_orders_cannot_be_refunded(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop)
        bought = await buy(client, shop, product["id"])
        response = await client.post(
            f"/v1/orders/{bought['order']['id']}/refunds", json={}, headers=shop.secret
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "invalid_transition"


class TestReviewFindings:
    async def test_a_merchant_reason_never_decides_how_a_refund_is_booked(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=2500, kind="digital", stock=None)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"])
        await deliver(db, settings, client)
        refund = await client.post(
            f"/v1/orders/{bought['order']['id']}/refunds",
            json={"reason": "duplicate_payment"},
            headers=shop.secret,
        )
        assert (refund.status_code, refund.json()["kind"]) == (201, "requested")
        detail = await order(client, shop, bought["order"]["id"])
        assert (detail["status"], detail["amount_refunded"]) == ("refunded", 2500)
        again = await client.post(f"/v1/orders/{bought['order']['id']}/refunds", json={}, headers=shop.secret)
        assert again.status_code == 409  # nothing left: the order is refunded

    async def test_a_second_charge_on_a_paid_attempt_is_recorded_and_refunded(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1100)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"])
        await deliver(db, settings, client)
        second = payment_event(bought["payment"]["id"], event_id="sbevt_second_charge", amount=1100)
        second["data"]["payment"]["id"] = "sbpay_another_charge"
        response = await client.post(f"/webhooks/sandbox/{shop.slug}", **signed(settings, shop, second))
        assert response.json()["result"] == "applied"
        detail = await order(client, shop, bought["order"]["id"])
        assert detail["status"] == "fulfilled"
        assert [p["status"] for p in detail["payments"]] == ["succeeded", "succeeded"]
        assert [(r["amount"], r["kind"]) for r in detail["refunds"]] == [(1100, "duplicate_payment")]
        assert "duplicate_payment" in await outbox_topics(db, shop.tenant_id, OutboxChannel.OPS_ALERT)

    async def test_a_refund_is_asked_for_once_at_a_time(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        from sqlalchemy import update

        from paycore.payments.models import Refund
        from paycore.payments.refunds import SUBMISSION_CLAIM

        product = await create_product(client, shop, price=1200, stock=1)
        first = await buy(client, shop, product["id"])
        await expire_due_orders(db, now=utcnow() + timedelta(minutes=31))
        second = await buy(client, shop, product["id"])
        await confirm(client, second["payment"]["id"])
        await confirm(client, first["payment"]["id"])
        await deliver(db, settings, client)  # the first order's late payment gets an automatic refund
        registry = build_registry(settings, db)
        async with db.session() as session:
            # As if a worker had just claimed it and were talking to the provider right now.
            await session.execute(update(Refund).values(submitted_at=utcnow()))
        assert await submit_pending_refunds(db, registry) == 0
        async with db.session() as session:
            # That worker died: its claim runs out and the refund is asked for again.
            await session.execute(
                update(Refund).values(submitted_at=utcnow() - SUBMISSION_CLAIM - timedelta(seconds=1))
            )
        assert await submit_pending_refunds(db, registry) == 1
        assert (await order(client, shop, first["order"]["id"]))["status"] == "refunded"


class TestHostileProviderBodies:
    """Before any signature is checked, a body is parsed: none may make a 500."""

    @pytest.mark.parametrize("provider", ["stripe", "paypal", "razorpay", "midtrans", "sandbox"])
    @pytest.mark.parametrize(
        "body",
        [
            b"[" * 60_000,
            b'{"order_id": "\\ud800", "status_code": "200", "gross_amount": "1.00", "signature_key": "'
            + b"a" * 128
            + b'"}',
            b"\xff\xfe",
            b"null",
        ],
        ids=["too-deep", "lone-surrogate", "not-utf8", "null"],
    )
    async def test_refused_with_a_4xx(
        self, client: httpx.AsyncClient, shop: Shop, provider: str, body: bytes
    ) -> None:
        response = await client.post(
            f"/webhooks/{provider}/{shop.slug}", content=body, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, response.text
