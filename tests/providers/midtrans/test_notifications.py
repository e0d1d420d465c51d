"""Midtrans notifications through `POST /webhooks/midtrans/{tenant}`: what each one does to the
order, and the HTTP status we answer (Midtrans retries by it: 2xx never; 400/404 twice; 500 once;
503 four times; anything else five times)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from paycore.outbox.models import OutboxChannel, OutboxMessage
from tests.flows.helpers import open_shop
from tests.providers.midtrans.steps import (
    PAID,
    PRICE,
    Paycore,
    buy,
    midtrans_shop,
    notify,
    order_of,
    outbox_topics,
    stored_events,
)


class TestPaymentStates:
    async def test_settlement_pays(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        response = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        assert response.status_code == 200, response.text
        assert response.json()["result"] == "applied"
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"] in PAID, order["amount_paid"]) == (True, PRICE)
        assert order["payments"][0]["status"] == "succeeded"

    async def test_capture_accept_pays_and_the_later_settlement_changes_nothing(
        self, paycore: Paycore
    ) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        captured = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "capture"))
        settled = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        assert captured.json()["result"] == "applied"
        assert (settled.status_code, settled.json()["result"]) == (200, "ignored")
        assert (await order_of(paycore, shop, bought.order_id))["status"] in PAID
        assert await outbox_topics(paycore.db, shop.tenant_id, "order.paid") == 1

    async def test_a_fraud_challenge_does_not_pay(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        response = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "challenge"))

        assert response.status_code == 200
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["amount_paid"]) == ("pending_payment", 0)
        assert order["payments"][0]["status"] == "requires_action"
        async with paycore.db.session(write=False) as session:
            alerts = list(
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.channel == OutboxChannel.OPS_ALERT)
                )
            )
        assert [alert.payload["code"] for alert in alerts] == ["payment_under_review"]

    async def test_a_challenge_accepted_at_midtrans_pays(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "challenge"))
        accepted = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "capture"))

        assert accepted.json() | {"event": None} == {
            "received": True,
            "duplicate": False,
            "event": None,
            "result": "applied",
        }
        assert (await order_of(paycore, shop, bought.order_id))["status"] in PAID

    async def test_a_late_pending_after_settlement_is_ignored(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        pending = paycore.fake.pay(bought.attempt_id, "pending")  # sent first, delivered last
        settlement = paycore.fake.pay(bought.attempt_id, "settlement")

        await notify(paycore, shop, settlement)
        late = await notify(paycore, shop, pending)

        # Its fields are re-read from the status API, which says settlement: the same event.
        assert (late.status_code, late.json()["duplicate"]) == (200, True)
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"] in PAID, order["payments"][0]["status"]) == (True, "succeeded")

    @pytest.mark.parametrize("outcome", ["deny", "expire", "cancel"])
    async def test_a_failed_payment_leaves_the_order_payable(self, paycore: Paycore, outcome: str) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        response = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, outcome))

        assert (response.status_code, response.json()["result"]) == (200, "applied")
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["payments"][0]["status"]) == ("pending_payment", "failed")
        assert await outbox_topics(paycore.db, shop.tenant_id, "payment.failed") == 1

    async def test_paid_after_a_denied_card_the_order_is_paid(self, paycore: Paycore) -> None:
        # Snap lets the customer try again after a declined card, under the same order_id.
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "deny"))
        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        assert (await order_of(paycore, shop, bought.order_id))["status"] in PAID

    async def test_a_different_amount_goes_to_review_not_paid(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        paycore.fake.transactions[bought.attempt_id].gross_amount = 50_000

        response = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        assert response.json()["result"] == "mismatch"
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["review_reason"]) == ("needs_review", "amount_mismatch")


class TestDuplicates:
    async def test_the_same_notification_twice_is_applied_once(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        notification = paycore.fake.pay(bought.attempt_id, "settlement")

        first = await notify(paycore, shop, notification)
        again = await notify(paycore, shop, notification)

        assert first.json()["duplicate"] is False
        assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})
        assert await stored_events(paycore.db, shop.tenant_id) == 1
        assert await outbox_topics(paycore.db, shop.tenant_id, "order.paid") == 1


class TestRefundNotifications:
    async def test_our_refund_confirmed_by_notification_counts_once(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))
        refunded = await paycore.client.post(
            f"/v1/orders/{bought.order_id}/refunds", json={"amount": 3_000_000}, headers=shop.secret
        )
        assert refunded.json()["status"] == "succeeded"

        response = await notify(paycore, shop, paycore.fake.notification(bought.attempt_id))

        assert (response.status_code, response.json()["result"]) == (200, "ignored")
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["amount_refunded"]) == ("partially_refunded", 3_000_000)
        assert [r["amount"] for r in order["refunds"]] == [3_000_000]

    async def test_a_partial_refund_made_in_the_dashboard_is_recorded(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        notification = paycore.fake.refund_at_dashboard(bought.attempt_id, 20_000)
        assert notification["transaction_status"] == "partial_refund"
        response = await notify(paycore, shop, notification)

        assert response.json()["result"] == "applied"
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["amount_refunded"]) == ("partially_refunded", 2_000_000)
        assert [(r["kind"], r["status"]) for r in order["refunds"]] == [("provider", "succeeded")]

    async def test_a_full_refund_then_its_resend(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        notification = paycore.fake.refund_at_dashboard(bought.attempt_id, PRICE // 100)
        assert notification["transaction_status"] == "refund"
        await notify(paycore, shop, notification)
        again = await notify(paycore, shop, notification)

        assert again.json()["duplicate"] is True
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["amount_refunded"]) == ("refunded", PRICE)


class TestOurAnswers:
    async def test_a_wrong_signature_is_400_and_stores_nothing(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        notification = paycore.fake.pay(bought.attempt_id, "settlement")

        response = await notify(paycore, shop, notification | {"signature_key": "0" * 128})

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_signature_invalid"
        assert await stored_events(paycore.db, shop.tenant_id) == 0
        assert (await order_of(paycore, shop, bought.order_id))["status"] == "pending_payment"

    @pytest.mark.parametrize("amount", ["99000", "99000.0"])
    async def test_a_reformatted_amount_is_400(self, paycore: Paycore, amount: str) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        notification = paycore.fake.pay(bought.attempt_id, "settlement")
        assert notification["gross_amount"] == "99000.00"

        response = await notify(paycore, shop, notification | {"gross_amount": amount})

        assert response.status_code == 400
        assert await stored_events(paycore.db, shop.tenant_id) == 0

    async def test_a_body_that_is_not_a_notification_is_400(self, paycore: Paycore) -> None:
        shop, _ = await midtrans_shop(paycore)
        response = await paycore.client.post(f"/webhooks/midtrans/{shop.slug}", content=b"{not json")
        assert response.status_code == 400

    async def test_a_tenant_without_midtrans_keys_is_400(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        stranger = await open_shop(paycore.db)

        response = await notify(paycore, stranger, paycore.fake.pay(bought.attempt_id, "settlement"))

        assert response.status_code == 400
        assert "no midtrans server key" in response.json()["error"]["message"]
        assert await stored_events(paycore.db, stranger.tenant_id) == 0

    async def test_an_unknown_tenant_is_404(self, paycore: Paycore) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        notification = paycore.fake.pay(bought.attempt_id, "settlement")
        response = await paycore.client.post("/webhooks/midtrans/no-such-shop", json=notification)
        assert response.status_code == 404

    async def test_failing_to_store_is_503_so_midtrans_sends_it_again(
        self, paycore: Paycore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        notification = paycore.fake.pay(bought.attempt_id, "settlement")

        async def broken(*args: object, **kwargs: object) -> str:
            raise OperationalError("INSERT", {}, Exception("disk full"))

        monkeypatch.setattr("paycore.payments.webhooks.store_and_apply_event", broken)
        response = await notify(paycore, shop, notification)
        assert response.status_code == 503
        monkeypatch.undo()

        resent = await notify(paycore, shop, notification)
        assert (resent.status_code, resent.json()["result"]) == (200, "applied")

    async def test_failing_to_apply_is_still_200_and_kept_for_retry(
        self, paycore: Paycore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)

        async def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr("paycore.payments.inbox.apply_neutral_event", broken)
        response = await notify(paycore, shop, paycore.fake.pay(bought.attempt_id, "settlement"))

        assert response.status_code == 200
        assert response.json()["result"] == "queued"
        assert await stored_events(paycore.db, shop.tenant_id) == 1
        assert (await order_of(paycore, shop, bought.order_id))["status"] == "pending_payment"


class TestUnsignedFields:
    async def test_an_edited_status_in_a_genuine_body_does_not_pay(self, paycore: Paycore) -> None:
        """The signature covers order_id, status_code and gross_amount only: a captured 'cancel'
        body edited to 'settlement' still verifies — the status API's answer is what counts."""
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        canceled = paycore.fake.pay(bought.attempt_id, "cancel")
        forged = {**canceled, "transaction_status": "settlement", "fraud_status": "accept"}

        response = await notify(paycore, shop, forged)

        assert response.status_code == 200
        order = await order_of(paycore, shop, bought.order_id)
        assert (order["status"], order["amount_paid"]) == ("pending_payment", 0)


class TestStatusApiUnavailable:
    @pytest.mark.parametrize("failure", [503, 401], ids=["midtrans-down", "key-refused"])
    async def test_an_unconfirmable_notification_is_503_and_stored_nowhere(
        self, paycore: Paycore, failure: int
    ) -> None:
        """Midtrans resends on 503 (four times); a refused key or an outage is no verdict on
        the payment, so the notification is neither refused nor stored."""
        shop, product = await midtrans_shop(paycore)
        bought = await buy(paycore, shop, product)
        settlement = paycore.fake.pay(bought.attempt_id, "settlement")
        paycore.fake.fail_with = failure

        response = await notify(paycore, shop, settlement)

        assert (response.status_code, response.json()["error"]["code"]) == (
            503,
            "webhook_verification_unavailable",
        )
        assert (await order_of(paycore, shop, bought.order_id))["status"] == "pending_payment"
        paycore.fake.fail_with = None
        assert (await notify(paycore, shop, settlement)).json()["result"] == "applied"
