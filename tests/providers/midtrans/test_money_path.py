"""The whole Midtrans money path through paycore's HTTP API: keys set, checkout at Snap, the
customer pays, the notification (or, when it is lost, reconciliation) pays the order once,
the merchant refunds through paycore."""

from __future__ import annotations

import json
from datetime import timedelta

from paycore.clock import utcnow
from paycore.payments.inbox import retry_unapplied_events
from paycore.payments.reconcile import reconcile_open_payments
from tests.flows.helpers import cart_with, checkout, create_product
from tests.providers.midtrans.fake import API_HOST, CLIENT_KEY, SNAP_HOST
from tests.providers.midtrans.steps import (
    PAID,
    PRICE,
    Paycore,
    buy,
    midtrans_shop,
    notify,
    order_of,
    outbox_topics,
)


class TestCheckout:
    async def test_checkout_opens_a_snap_transaction(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)

        bought = await buy(paycore, shop, product, return_url="https://shop.example/thanks")

        transaction = paycore.fake.transactions[bought.attempt_id]
        assert transaction.gross_amount == 99_000
        payment = bought.body["payment"]
        assert payment["provider"] == "midtrans"
        assert payment["client_data"] == {"snap_token": transaction.token, "client_key": CLIENT_KEY}
        assert bought.body["redirect_url"] == f"https://{SNAP_HOST}/snap/v4/redirection/{transaction.token}"
        sent = json.loads(paycore.fake.requests[-1]["body"])
        assert sent["callbacks"] == {"finish": "https://shop.example/thanks"}

    async def test_the_credentials_answer_shows_no_server_key(self, paycore: Paycore) -> None:
        shop, _ = await midtrans_shop(paycore)
        response = await paycore.client.get("/v1/providers/midtrans", headers=shop.secret)
        body = response.json()
        assert "SB-Mid-server-TEST" not in response.text
        assert body["credentials"]["client_key"] == CLIENT_KEY
        assert body["webhook_url"] == f"http://paycore.test/webhooks/midtrans/{shop.slug}"

    async def test_a_price_in_fractions_of_a_rupiah_is_refused(self, paycore: Paycore) -> None:
        shop, _ = await midtrans_shop(paycore)
        odd = await create_product(paycore.client, shop, price=PRICE + 50, currency="IDR")
        response = await checkout(
            paycore.client, shop, await cart_with(paycore.client, shop, (odd["id"], 1)), provider="midtrans"
        )
        assert (response.status_code, response.json()["error"]["code"]) == (502, "provider_refused")
        assert paycore.fake.transactions == {}

    async def test_midtrans_down_at_checkout_is_503(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        paycore.fake.fail_with = 503
        response = await checkout(
            paycore.client, shop, await cart_with(paycore.client, shop, (product, 1)), provider="midtrans"
        )
        assert (response.status_code, response.json()["error"]["code"]) == (503, "provider_unavailable")

    async def test_without_keys_checkout_is_refused_before_any_order(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        await paycore.client.delete("/v1/providers/midtrans", headers=shop.secret)
        response = await checkout(
            paycore.client, shop, await cart_with(paycore.client, shop, (product, 1)), provider="midtrans"
        )
        assert (response.status_code, response.json()["error"]["code"]) == (400, "provider_not_configured")


class TestPaid:
    async def test_paid_by_notification_with_effects_once(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        notification = paycore.fake.pay(bought.attempt_id, "settlement")
        for _ in range(3):  # Midtrans may send it more than once
            assert (await notify(paycore, shop, notification)).status_code == 200

        order = await order_of(paycore, shop, bought.order_id)
        assert order["status"] in PAID
        assert order["amount_paid"] == PRICE
        assert await outbox_topics(paycore.db, shop.tenant_id, "order.paid") == 1
        assert await retry_unapplied_events(paycore.db, paycore.registry, paycore.settings) == 0

    async def test_a_lost_notification_is_recovered_by_reconciliation(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        paycore.fake.pay(bought.attempt_id, "settlement")  # ...and Midtrans' notification never arrives
        later = utcnow() + timedelta(minutes=paycore.settings.reconcile_after_minutes + 1)

        settled = await reconcile_open_payments(paycore.db, paycore.registry, paycore.settings, now=later)

        assert settled == 1
        status_calls = [r for r in paycore.fake.requests if r["path"] == f"/v2/{bought.attempt_id}/status"]
        assert status_calls and status_calls[-1]["host"] == API_HOST
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"] in PAID, order["amount_paid"]) == (True, PRICE)
        assert await reconcile_open_payments(paycore.db, paycore.registry, paycore.settings, now=later) == 0
        # The notification arriving after all changes nothing.
        late = await notify(paycore, shop, paycore.fake.notification(bought.attempt_id))
        assert late.json()["result"] == "ignored"
        assert await outbox_topics(paycore.db, shop.tenant_id, "order.paid") == 1

    async def test_reconciliation_leaves_an_unchosen_payment_open(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)  # the customer never picks a payment method
        later = utcnow() + timedelta(minutes=paycore.settings.reconcile_after_minutes + 1)

        assert await reconcile_open_payments(paycore.db, paycore.registry, paycore.settings, now=later) == 0
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["payments"][0]["status"]) == ("pending_payment", "requires_action")

    async def test_confirm_on_return_pays_from_the_status_api(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        receipt = {"X-Receipt-Token": bought.body["receipt_token"], **shop.publishable}

        early = await paycore.client.post(f"/v1/checkout/{bought.order_id}/confirm", headers=receipt)
        assert (early.status_code, early.json()["status"]) == (200, "pending_payment")

        paycore.fake.pay(bought.attempt_id, "capture")
        confirmed = await paycore.client.post(f"/v1/checkout/{bought.order_id}/confirm", headers=receipt)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] in PAID


class TestRefund:
    async def test_refund_through_paycore_reaches_midtrans(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        response = await paycore.client.post(
            f"/v1/orders/{bought.order_id}/refunds", json={"amount": 4_000_000}, headers=shop.secret
        )

        assert response.status_code == 201, response.text
        refund = response.json()
        assert refund["status"] == "succeeded"
        sent = json.loads(paycore.fake.requests[-1]["body"])
        assert sent == {
            "refund_key": refund["id"],
            "amount": 40_000,
            "reason": f"paycore refund {refund['id']}",
        }
        assert paycore.fake.transactions[bought.attempt_id].transaction_status == "partial_refund"
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["amount_refunded"]) == ("partially_refunded", 4_000_000)

    async def test_a_refund_midtrans_refuses_is_failed_and_the_money_stays(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))
        # Midtrans' side moved on to a state it will not refund from (a challenged capture).
        transaction = paycore.fake.transactions[bought.attempt_id]
        transaction.transaction_status, transaction.fraud_status = "capture", "challenge"

        response = await paycore.client.post(
            f"/v1/orders/{bought.order_id}/refunds", json={"amount": 4_000_000}, headers=shop.secret
        )

        assert response.json()["status"] == "failed"
        assert response.json()["failure_reason"].startswith("412")
        order = await order_of(paycore, shop, bought.order_id)
        assert order["amount_refunded"] == 0
