"""The Stripe money path end to end: paycore's API, the real SDK, the fake Stripe, signed webhooks."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.payments.providers import stripe_signing
from paycore.payments.providers.registry import ProviderRegistry
from paycore.payments.reconcile import reconcile_open_payments
from tests.flows.helpers import order
from tests.providers.stripe.conftest import PUBLISHABLE_KEY
from tests.providers.stripe.fake import FakeStripe
from tests.providers.stripe.flows import (
    inbox_size,
    intent_of,
    merchant_events,
    post_event,
    start_checkout,
    stripe_shop,
)

Api = tuple[httpx.AsyncClient, ProviderRegistry]
# A physical product with stock is fulfilled in the same transaction that pays it.
PAID = {"paid", "fulfilled"}


class TestPaidByWebhook:
    async def test_checkout_pay_webhook_paid_once(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        intent = intent_of(fake_stripe, started)
        assert started["redirect_url"] is None
        assert started["payment"]["client_data"] == {
            "client_secret": intent["client_secret"],
            "publishable_key": PUBLISHABLE_KEY,
        }
        assert [s.idempotency_key for s in fake_stripe.seen if s.method == "POST"] == [
            started["payment"]["id"]
        ]

        succeeded = fake_stripe.event("payment_intent.succeeded", fake_stripe.pay(intent["id"]))
        first = await post_event(client, shop, succeeded)
        assert first.status_code == 200, first.text
        assert first.json()["result"] == "applied"
        detail = await order(client, shop, started["order"]["id"])
        assert detail["status"] in PAID
        assert detail["amount_paid"] == 2500
        assert (await merchant_events(db, shop)).count("order.paid") == 1

        again = await post_event(client, shop, succeeded)
        assert again.json() == {"received": True, "duplicate": True}
        assert (await merchant_events(db, shop)).count("order.paid") == 1
        assert await inbox_size(db, shop) == 1

    async def test_a_late_failure_or_processing_does_not_unpay(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        intent = intent_of(fake_stripe, started)
        declined = fake_stripe.decline(intent["id"])
        paid = fake_stripe.pay(intent["id"])
        assert (
            await post_event(client, shop, fake_stripe.event("payment_intent.succeeded", paid))
        ).status_code == 200
        for late in ("payment_intent.payment_failed", "payment_intent.processing"):
            response = await post_event(client, shop, fake_stripe.event(late, declined))
            assert response.json()["result"] == "ignored"
        detail = await order(client, shop, started["order"]["id"])
        assert detail["status"] in PAID
        assert "payment.failed" not in await merchant_events(db, shop)

    async def test_a_decline_then_a_success_on_the_same_intent_pays(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        intent = intent_of(fake_stripe, started)
        failed = await post_event(
            client,
            shop,
            fake_stripe.event("payment_intent.payment_failed", fake_stripe.decline(intent["id"])),
        )
        assert failed.json()["result"] == "applied"
        assert (await order(client, shop, started["order"]["id"]))["status"] == "pending_payment"
        await post_event(
            client, shop, fake_stripe.event("payment_intent.succeeded", fake_stripe.pay(intent["id"]))
        )
        assert (await order(client, shop, started["order"]["id"]))["status"] in PAID

    async def test_a_short_payment_goes_to_review_not_paid(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        paid = fake_stripe.pay(intent_of(fake_stripe, started)["id"], amount=2400)
        response = await post_event(client, shop, fake_stripe.event("payment_intent.succeeded", paid))
        assert response.json()["result"] == "mismatch"
        assert (await order(client, shop, started["order"]["id"]))["status"] == "needs_review"


class TestRefusedWebhooks:
    async def test_no_webhook_secret_refuses_and_stores_nothing(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client, webhook_secret=None)
        started = await start_checkout(client, shop)
        paid = fake_stripe.pay(intent_of(fake_stripe, started)["id"])
        response = await post_event(client, shop, fake_stripe.event("payment_intent.succeeded", paid))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_signature_invalid"
        assert await inbox_size(db, shop) == 0
        assert (await order(client, shop, started["order"]["id"]))["status"] == "pending_payment"

    async def test_a_wrong_secret_or_a_live_event_signed_by_the_test_secret_is_refused(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        paid = fake_stripe.pay(intent_of(fake_stripe, started)["id"])
        forged = await post_event(
            client, shop, fake_stripe.event("payment_intent.succeeded", paid), secret="whsec_forger"
        )
        claims_live = await post_event(
            client, shop, fake_stripe.event("payment_intent.succeeded", paid, livemode=True)
        )
        assert (forged.status_code, claims_live.status_code) == (400, 400)
        assert await inbox_size(db, shop) == 0
        assert (await order(client, shop, started["order"]["id"]))["status"] == "pending_payment"


class TestReconcileAndConfirm:
    async def test_a_lost_webhook_is_made_good_by_reconciliation(
        self, db: Database, settings: Settings, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, registry = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        later = utcnow() + timedelta(minutes=settings.reconcile_after_minutes + 1)
        assert await reconcile_open_payments(db, registry, settings, now=later) == 0  # not paid yet
        paid = fake_stripe.pay(intent_of(fake_stripe, started)["id"])
        # Asked again only after its backoff (the reconcile interval after the first look).
        assert await reconcile_open_payments(db, registry, settings, now=later) == 0
        again = later + timedelta(minutes=settings.reconcile_after_minutes + 1)
        assert await reconcile_open_payments(db, registry, settings, now=again) == 1
        assert await reconcile_open_payments(db, registry, settings, now=again) == 0
        assert (await order(client, shop, started["order"]["id"]))["status"] in PAID
        # The webhook arrives after all: nothing more happens.
        late = await post_event(client, shop, fake_stripe.event("payment_intent.succeeded", paid))
        assert late.json()["result"] == "ignored"
        assert (await merchant_events(db, shop)).count("order.paid") == 1

    async def test_confirm_after_elements_reads_stripe_not_the_browser(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        path = f"/v1/checkout/{started['order']['id']}/confirm"
        headers = {**shop.publishable, "X-Receipt-Token": started["receipt_token"]}
        claim = {"params": {"redirect_status": "succeeded"}}  # what the browser says counts for nothing
        unpaid = await client.post(path, json=claim, headers=headers)
        assert unpaid.json()["status"] == "pending_payment"
        fake_stripe.pay(intent_of(fake_stripe, started)["id"])
        paid = await client.post(path, json=claim, headers=headers)
        assert paid.json()["status"] in PAID


class TestRefunds:
    async def test_a_refund_reaches_stripe_and_the_webhook_changes_nothing_more(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        intent = intent_of(fake_stripe, started)
        await post_event(
            client, shop, fake_stripe.event("payment_intent.succeeded", fake_stripe.pay(intent["id"]))
        )
        order_id = started["order"]["id"]
        response = await client.post(
            f"/v1/orders/{order_id}/refunds", json={"amount": 2500}, headers=shop.secret
        )
        assert response.status_code == 201, response.text
        refund = response.json()
        assert refund["status"] == "succeeded"
        (at_stripe,) = fake_stripe.refunds.values()
        assert (at_stripe["amount"], at_stripe["metadata"]["paycore_refund"]) == (2500, refund["id"])
        assert [
            s.idempotency_key for s in fake_stripe.seen if s.path == "/v1/refunds" and s.method == "POST"
        ] == [refund["id"]]
        detail = await order(client, shop, order_id)
        assert (detail["status"], detail["amount_refunded"]) == ("refunded", 2500)

        for event_type in ("refund.created", "refund.updated"):
            echoed = await post_event(client, shop, fake_stripe.event(event_type, at_stripe))
            assert echoed.json()["result"] == "ignored"
        detail = await order(client, shop, order_id)
        assert (detail["status"], detail["amount_refunded"], len(detail["refunds"])) == ("refunded", 2500, 1)
        assert (await merchant_events(db, shop)).count("order.refunded") == 1

    async def test_a_pending_refund_is_settled_by_its_webhook(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        intent = intent_of(fake_stripe, started)
        await post_event(
            client, shop, fake_stripe.event("payment_intent.succeeded", fake_stripe.pay(intent["id"]))
        )
        fake_stripe.refund_status = "pending"
        response = await client.post(
            f"/v1/orders/{started['order']['id']}/refunds", json={}, headers=shop.secret
        )
        assert response.json()["status"] == "pending"
        (at_stripe,) = fake_stripe.refunds.values()
        at_stripe["status"] = "succeeded"
        settled = await post_event(client, shop, fake_stripe.event("refund.updated", at_stripe))
        assert settled.json()["result"] == "applied"
        assert (await order(client, shop, started["order"]["id"]))["status"] == "refunded"

    async def test_a_refund_made_in_the_dashboard_is_recorded_once(
        self, db: Database, paycore: Api, fake_stripe: FakeStripe
    ) -> None:
        client, _ = paycore
        shop = await stripe_shop(db, client)
        started = await start_checkout(client, shop)
        intent = intent_of(fake_stripe, started)
        await post_event(
            client, shop, fake_stripe.event("payment_intent.succeeded", fake_stripe.pay(intent["id"]))
        )
        at_stripe = fake_stripe.refund_at_stripe(intent["id"], 500)
        charge = {
            "id": intent["latest_charge"],
            "object": "charge",
            "payment_intent": intent["id"],
            "refunds": {"object": "list", "data": [at_stripe], "has_more": False},
        }
        for event in (
            fake_stripe.event("refund.created", at_stripe),
            fake_stripe.event("charge.refunded", charge),
        ):
            await post_event(client, shop, event)
        detail = await order(client, shop, started["order"]["id"])
        assert (detail["status"], detail["amount_refunded"], len(detail["refunds"])) == (
            "partially_refunded",
            500,
            1,
        )


class TestSignatureAmplification:
    async def test_the_probe_of_2000_empty_v1_is_refused_without_an_hmac(
        self, db: Database, paycore: Api, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Issue 11, finding 6: anonymous, an 8 KB header of empty `v1=` over a large body made
        # one HMAC of the body per entry.
        client, _ = paycore
        shop = await stripe_shop(db, client)
        computed: list[int] = []
        real = stripe_signing.signature
        monkeypatch.setattr(stripe_signing, "signature", lambda *args: computed.append(1) or real(*args))
        header = f"t={int(utcnow().timestamp())}," + ",".join(["v1="] * 2000)
        response = await client.post(
            f"/webhooks/stripe/{shop.slug}",
            content=b'{"id":"evt_1","object":"event"' + b" " * 500_000 + b"}",
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_signature_invalid"
        assert computed == []
        assert await inbox_size(db, shop) == 0
