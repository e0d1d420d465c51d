"""The Razorpay money path end to end, through paycore's HTTP API, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.payments.reconcile import reconcile_open_payments
from paycore.payments.refunds import submit_pending_refunds
from tests.flows.helpers import order
from tests.providers.razorpay.conftest import WEBHOOK_SECRET
from tests.providers.razorpay.fake import FakeRazorpay, sign
from tests.providers.razorpay.harness import Harness, razorpay_shop

# The products here have nothing to fulfil: paying moves an order through `paid` to `fulfilled`.
PAID = "fulfilled"


@pytest.fixture
async def rzp(db: Database, settings: Settings, fake: FakeRazorpay) -> AsyncIterator[Harness]:
    async with razorpay_shop(db, settings, fake) as harness:
        yield harness


class TestCheckoutAndConfirm:
    async def test_checkout_makes_an_order_in_paise(self, rzp: Harness) -> None:
        bought = await rzp.buy(price=49900)
        made = rzp.fake.orders[bought.razorpay_order_id]
        assert (made["amount"], made["currency"]) == (49900, "INR")
        assert made["notes"]["order"] == bought.order_id
        assert bought.client_data == {
            "key_id": rzp.fake.key_id,
            "razorpay_order_id": bought.razorpay_order_id,
            "amount": 49900,
            "currency": "INR",
        }

    async def test_confirm_pays_and_the_webhook_after_it_changes_nothing(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        confirmed = await rzp.confirm(bought, rzp.fake.checkout_response(payment))
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == PAID

        webhook = await rzp.send_webhook("payment.captured", payment=payment)
        assert webhook.status_code == 200, webhook.text
        assert webhook.json()["result"] == "ignored"
        paid = await rzp.send_webhook("order.paid", payment=payment)
        assert paid.json()["result"] == "ignored"

        assert await rzp.outbox_count("order.paid") == 1
        detail = await order(rzp.http, rzp.shop, bought.order_id)
        assert detail["amount_paid"] == 49900
        assert [e["action"] for e in detail["timeline"]].count("payment_attempt.succeeded") == 1

    async def test_a_forged_confirm_is_refused_and_changes_nothing(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        forged = {**rzp.fake.checkout_response(payment), "razorpay_signature": sign("guess", b"x")}
        response = await rzp.confirm(bought, forged)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "confirmation_invalid"
        assert rzp.fake.key_secret not in response.text
        assert await rzp.status(bought) == "pending_payment"
        assert await rzp.stored_events() == 0

    async def test_a_signature_made_with_the_webhook_secret_is_refused(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        params = rzp.fake.checkout_response(payment, key_secret=WEBHOOK_SECRET)
        assert (await rzp.confirm(bought, params)).status_code == 400
        assert await rzp.status(bought) == "pending_payment"


class TestWebhooks:
    async def test_failed_then_captured_ends_paid(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        failed = rzp.fake.pay(bought.razorpay_order_id, status="failed")
        response = await rzp.send_webhook("payment.failed", payment=failed)
        assert response.json()["result"] == "applied"
        assert await rzp.status(bought) == "pending_payment"
        assert await rzp.outbox_count("payment.failed") == 1

        captured = rzp.fake.capture(failed["id"])
        response = await rzp.send_webhook("payment.captured", payment=captured)
        assert response.json()["result"] == "applied"
        assert await rzp.status(bought) == PAID
        assert await rzp.outbox_count("order.paid") == 1

    async def test_a_late_failure_after_capture_does_not_unpay(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        await rzp.send_webhook("payment.captured", payment=payment)
        response = await rzp.send_webhook("payment.failed", payment={**payment, "status": "failed"})
        assert response.json()["result"] == "ignored"
        assert await rzp.status(bought) == PAID

    async def test_a_duplicate_event_id_is_processed_once(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        body, headers = rzp.fake.webhook(
            "payment.captured", secret=WEBHOOK_SECRET, event_id="evt_dup1", payment=payment
        )
        url = f"/webhooks/razorpay/{rzp.shop.slug}"
        first = await rzp.http.post(url, content=body, headers=headers)
        second = await rzp.http.post(url, content=body, headers=headers)
        assert first.json()["duplicate"] is False
        assert second.json() == {"received": True, "duplicate": True}
        assert await rzp.stored_events() == 1
        assert await rzp.status(bought) == PAID
        assert await rzp.outbox_count("order.paid") == 1

    async def test_a_signed_body_replayed_under_another_event_id_is_a_duplicate(self, rzp: Harness) -> None:
        # The probe of issue 11, finding 12: x-razorpay-event-id is not signed, so the same signed
        # body sent again under an invented id must not become a second event.
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        body, headers = rzp.fake.webhook(
            "payment.captured", secret=WEBHOOK_SECRET, event_id="evt_First01", payment=payment
        )
        url = f"/webhooks/razorpay/{rzp.shop.slug}"
        first = await rzp.http.post(url, content=body, headers=headers)
        replayed = await rzp.http.post(
            url, content=body, headers={**headers, "x-razorpay-event-id": "evt_Other02"}
        )
        assert first.json()["duplicate"] is False
        assert replayed.json() == {"received": True, "duplicate": True}
        assert await rzp.stored_events() == 1
        assert await rzp.status(bought) == PAID
        assert await rzp.outbox_count("order.paid") == 1

    async def test_a_webhook_that_outran_nothing_pays_alone(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        response = await rzp.send_webhook("order.paid", payment=payment)
        assert response.json()["result"] == "applied"
        assert await rzp.status(bought) == PAID

    async def test_a_wrong_signature_is_refused_and_stores_nothing(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        response = await rzp.send_webhook("payment.captured", secret="whsec_not_ours_0000", payment=payment)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_signature_invalid"
        assert await rzp.stored_events() == 0
        assert await rzp.status(bought) == "pending_payment"


async def test_webhooks_without_a_secret_are_refused(
    db: Database, settings: Settings, fake: FakeRazorpay
) -> None:
    async with razorpay_shop(db, settings, fake, webhook_secret=None) as rzp:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        response = await rzp.send_webhook("payment.captured", payment=payment)
        assert response.status_code == 400
        assert "webhook secret" in response.json()["error"]["message"]
        assert await rzp.stored_events() == 0
        assert await rzp.status(bought) == "pending_payment"


class TestReconciliation:
    async def test_a_lost_webhook_without_confirm_is_paid_by_reconciliation(self, rzp: Harness) -> None:
        bought = await rzp.buy()
        rzp.fake.pay(bought.razorpay_order_id, status="failed")
        later = utcnow() + timedelta(minutes=rzp.settings.reconcile_after_minutes + 1)
        assert await reconcile_open_payments(rzp.db, rzp.registry, rzp.settings, now=later) == 0
        assert await rzp.status(bought) == "pending_payment"  # a failed payment is not the end

        rzp.fake.pay(bought.razorpay_order_id)
        # Asked again only after its backoff (the reconcile interval after the first look).
        assert await reconcile_open_payments(rzp.db, rzp.registry, rzp.settings, now=later) == 0
        again = later + timedelta(minutes=rzp.settings.reconcile_after_minutes + 1)
        assert await reconcile_open_payments(rzp.db, rzp.registry, rzp.settings, now=again) == 1
        assert await rzp.status(bought) == PAID
        assert await reconcile_open_payments(rzp.db, rzp.registry, rzp.settings, now=again) == 0
        assert await rzp.outbox_count("order.paid") == 1


class TestRefunds:
    async def paid(self, rzp: Harness) -> str:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        assert (await rzp.confirm(bought, rzp.fake.checkout_response(payment))).status_code == 200
        return bought.order_id

    async def test_a_refund_reaches_razorpay_once_with_an_idempotency_key(self, rzp: Harness) -> None:
        order_id = await self.paid(rzp)
        headers = {**rzp.shop.secret, "Idempotency-Key": "refund-once-1"}
        first = await rzp.http.post(f"/v1/orders/{order_id}/refunds", json={"amount": 10000}, headers=headers)
        second = await rzp.http.post(
            f"/v1/orders/{order_id}/refunds", json={"amount": 10000}, headers=headers
        )
        assert first.status_code == second.status_code == 201, first.text
        assert first.json()["id"] == second.json()["id"]
        (refund,) = rzp.fake.refunds.values()
        assert (refund["amount"], refund["receipt"]) == (10000, first.json()["id"])
        assert first.json()["status"] == "succeeded"
        assert (await order(rzp.http, rzp.shop, order_id))["amount_refunded"] == 10000

    async def test_a_lost_refund_response_is_resubmitted_without_a_second_refund(self, rzp: Harness) -> None:
        order_id = await self.paid(rzp)
        rzp.fake.lose_next_refund_response = True
        response = await rzp.http.post(f"/v1/orders/{order_id}/refunds", json={}, headers=rzp.shop.secret)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "pending"
        assert len(rzp.fake.refunds) == 1  # Razorpay made it; paycore did not hear back

        assert await submit_pending_refunds(rzp.db, rzp.registry) == 1
        assert len(rzp.fake.refunds) == 1
        detail = await order(rzp.http, rzp.shop, order_id)
        assert detail["status"] == "refunded"
        assert detail["amount_refunded"] == 49900

    async def test_a_pending_refund_is_settled_by_refund_processed(self, rzp: Harness) -> None:
        order_id = await self.paid(rzp)
        rzp.fake.refund_status = "pending"
        response = await rzp.http.post(
            f"/v1/orders/{order_id}/refunds", json={"amount": 100}, headers=rzp.shop.secret
        )
        assert response.json()["status"] == "pending"
        (refund,) = rzp.fake.refunds.values()
        payment = rzp.fake.payments[refund["payment_id"]]
        processed = await rzp.send_webhook(
            "refund.processed", refund={**refund, "status": "processed"}, payment=payment
        )
        assert processed.json()["result"] == "applied"
        assert (await order(rzp.http, rzp.shop, order_id))["amount_refunded"] == 100
        again = await rzp.send_webhook(
            "refund.processed", refund={**refund, "status": "processed"}, payment=payment
        )
        assert again.json()["result"] == "ignored"
        assert (await order(rzp.http, rzp.shop, order_id))["amount_refunded"] == 100


async def test_no_secret_reaches_the_logs_or_responses(
    db: Database, settings: Settings, fake: FakeRazorpay, capsys: pytest.CaptureFixture[str]
) -> None:
    responses: list[str] = []
    async with razorpay_shop(db, settings, fake) as rzp:
        bought = await rzp.buy()
        payment = rzp.fake.pay(bought.razorpay_order_id)
        good = rzp.fake.checkout_response(payment)
        responses.append((await rzp.confirm(bought, {**good, "razorpay_signature": "0" * 64})).text)
        responses.append(
            (await rzp.send_webhook("payment.captured", secret="whsec_wrong_000000", payment=payment)).text
        )
        responses.append((await rzp.confirm(bought, good)).text)
        responses.append((await rzp.http.get("/v1/providers", headers=rzp.shop.secret)).text)
        rzp.fake.key_secret = "rotated_at_razorpay_0001"  # our stored key is now wrong: 401 from Razorpay
        refund = await rzp.http.post(
            f"/v1/orders/{bought.order_id}/refunds", json={}, headers=rzp.shop.secret
        )
        responses.append(refund.text)
        assert refund.json()["status"] == "failed"
    captured = capsys.readouterr()
    everything = captured.out + captured.err + "".join(responses)
    assert "fake_key_secret_0123456789" not in everything
    assert WEBHOOK_SECRET not in everything
    assert "authentication failed" in everything.lower()  # the refusal itself is logged
