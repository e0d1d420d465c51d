"""PayPal end to end through paycore's HTTP API: checkout, approval at the (fake) PayPal, the
customer's return, webhooks in any order and any number, reconciliation, refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.outbox.models import OutboxMessage
from paycore.payments.models import PaymentEvent
from paycore.payments.providers.registry import ProviderRegistry
from paycore.payments.reconcile import reconcile_open_payments
from tests.flows.helpers import Shop, cart_with, checkout, create_product, open_shop, order
from tests.providers.paypal.conftest import paypal_settings
from tests.providers.paypal.fake import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, FakePayPal
from tests.providers.support import HostRouter, api_client, set_provider

RETURN_URL = "https://shop.example/paypal-return"


@dataclass
class Flow:
    client: httpx.AsyncClient
    registry: ProviderRegistry
    settings: Settings
    db: Database
    shop: Shop
    fake: FakePayPal

    async def buy(self, price: int = 2500) -> dict[str, Any]:
        product = await create_product(self.client, self.shop, price=price)
        response = await checkout(
            self.client,
            self.shop,
            await cart_with(self.client, self.shop, (product["id"], 1)),
            provider="paypal",
            return_url=RETURN_URL,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def confirm(self, bought: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"/v1/checkout/{bought['order']['id']}/confirm",
            headers={**self.shop.publishable, "X-Receipt-Token": bought["receipt_token"]},
        )

    async def webhook(self, event: dict[str, Any] | bytes, **signing: Any) -> httpx.Response:
        body, headers = self.fake.signed(event, **signing)
        return await self.client.post(f"/webhooks/paypal/{self.shop.slug}", content=body, headers=headers)

    async def order(self, bought: dict[str, Any]) -> dict[str, Any]:
        return await order(self.client, self.shop, bought["order"]["id"])

    async def count(self, model: Any, *conditions: Any) -> int:
        async with self.db.session(write=False) as session:
            found = await session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.tenant_id == self.shop.tenant_id, *conditions)
            )
        return int(found or 0)

    async def paid_messages(self) -> int:
        return await self.count(OutboxMessage, OutboxMessage.topic == "order.paid")


def order_id_of(bought: dict[str, Any]) -> str:
    paypal_order: str = bought["payment"]["client_data"]["paypal_order_id"]
    return paypal_order


async def open_flow(
    db: Database, router: HostRouter, fake: FakePayPal, settings: Settings, *, webhook_id: str | None
) -> AsyncIterator[Flow]:
    async with api_client(db, settings, router) as (client, registry):
        shop = await open_shop(db)
        account = await set_provider(
            client,
            shop,
            "paypal",
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            webhook_secret=webhook_id,
        )
        assert account["credentials"]["client_id"] == CLIENT_ID
        assert CLIENT_SECRET not in str(account)
        yield Flow(client, registry, settings, db, shop, fake)


def settings_for(db: Database, trust_roots: str, **overrides: Any) -> Settings:
    url = db.engine.url.render_as_string(hide_password=False)
    return paypal_settings(trust_roots, database_url=url, **overrides)


@pytest.fixture
async def flow(db: Database, router: HostRouter, fake: FakePayPal, trust_roots: str) -> AsyncIterator[Flow]:
    async for opened in open_flow(db, router, fake, settings_for(db, trust_roots), webhook_id=WEBHOOK_ID):
        yield opened


class TestCheckoutAndReturn:
    async def test_customer_returns_capture_pays_once_then_webhook_is_a_no_op(self, flow: Flow) -> None:
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        (created,) = flow.fake.create_requests
        assert created["request_id"] == bought["payment"]["id"]
        assert created["body"]["purchase_units"][0]["custom_id"] == bought["payment"]["id"]
        assert created["body"]["purchase_units"][0]["amount"] == {"currency_code": "EUR", "value": "25.00"}
        assert bought["redirect_url"] == f"https://www.sandbox.paypal.com/checkoutnow?token={paypal_order}"

        flow.fake.approve(paypal_order)
        confirmed = await flow.confirm(bought)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "fulfilled"
        assert flow.fake.capture_requests == [f"capture-{paypal_order}"]

        again = await flow.confirm(bought)  # a double click on the return page
        assert again.status_code == 200
        completed = flow.fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order)
        first = await flow.webhook(completed)
        assert first.status_code == 200, first.text
        assert first.json()["result"] == "ignored"
        redelivered = await flow.webhook(completed)
        assert redelivered.json()["duplicate"] is True

        detail = await flow.order(bought)
        assert (detail["status"], detail["amount_paid"]) == ("fulfilled", 2500)
        assert [p["status"] for p in detail["payments"]] == ["succeeded"]
        assert await flow.paid_messages() == 1
        assert len(flow.fake.orders[paypal_order]["purchase_units"][0]["payments"]["captures"]) == 1

    async def test_return_before_approval_pays_nothing(self, flow: Flow) -> None:
        bought = await flow.buy()
        confirmed = await flow.confirm(bought)
        assert confirmed.status_code == 200
        assert confirmed.json()["status"] == "pending_payment"
        assert flow.fake.orders[order_id_of(bought)]["status"] == "PAYER_ACTION_REQUIRED"

    async def test_confirm_needs_the_receipt_token(self, flow: Flow) -> None:
        bought = await flow.buy()
        flow.fake.approve(order_id_of(bought))
        refused = await flow.client.post(
            f"/v1/checkout/{bought['order']['id']}/confirm",
            headers={**flow.shop.publishable, "X-Receipt-Token": "forged"},
        )
        assert refused.status_code == 404
        assert flow.fake.capture_requests == []

    async def test_paypal_down_at_return_answers_503_and_reconciliation_settles(self, flow: Flow) -> None:
        bought = await flow.buy()
        flow.fake.approve(order_id_of(bought))
        flow.fake.unavailable.add("orders")
        assert (await flow.confirm(bought)).status_code == 503
        flow.fake.unavailable.clear()
        await reconcile_open_payments(
            flow.db, flow.registry, flow.settings, now=utcnow() + timedelta(minutes=15)
        )
        assert (await flow.order(bought))["status"] == "fulfilled"


class TestWebhooks:
    async def test_webhooks_out_of_order_and_a_capture_made_elsewhere(self, flow: Flow) -> None:
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        flow.fake.approve(paypal_order)
        flow.fake.capture_elsewhere(paypal_order)
        completed = await flow.webhook(flow.fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order))
        assert completed.json()["result"] == "applied"
        approved = flow.fake.event(
            "CHECKOUT.ORDER.APPROVED", flow.fake.orders[paypal_order] | {"status": "APPROVED"}
        )
        late = await flow.webhook(approved)
        assert late.json()["result"] == "ignored"
        confirmed = await flow.confirm(bought)  # PayPal answers ORDER_ALREADY_CAPTURED: read instead
        assert confirmed.status_code == 200, confirmed.text
        detail = await flow.order(bought)
        assert (detail["status"], detail["amount_paid"]) == ("fulfilled", 2500)
        assert await flow.paid_messages() == 1

    async def test_capture_matched_by_our_attempt_id_when_the_order_id_is_missing(self, flow: Flow) -> None:
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        flow.fake.approve(paypal_order)
        flow.fake.capture_elsewhere(paypal_order)
        event = flow.fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order, supplementary_data={})
        assert (await flow.webhook(event)).json()["result"] == "applied"
        assert (await flow.order(bought))["status"] == "fulfilled"

    async def test_pending_capture_does_not_pay_until_completed(self, flow: Flow) -> None:
        flow.fake.next_capture_status = "PENDING"
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        flow.fake.approve(paypal_order)
        assert (await flow.confirm(bought)).json()["status"] == "pending_payment"
        pending = await flow.webhook(flow.fake.capture_event("PAYMENT.CAPTURE.PENDING", paypal_order))
        assert pending.status_code == 200
        detail = await flow.order(bought)
        assert (detail["status"], detail["amount_paid"]) == ("pending_payment", 0)
        assert [p["status"] for p in detail["payments"]] == ["requires_action"]
        assert await flow.paid_messages() == 0

        flow.fake.capture_of(paypal_order).update(status="COMPLETED", status_details=None)
        await flow.webhook(flow.fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order))
        assert (await flow.order(bought))["status"] == "fulfilled"

    @pytest.mark.parametrize("event_type", ["PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"])
    async def test_denied_capture_fails_the_attempt(self, flow: Flow, event_type: str) -> None:
        flow.fake.next_capture_status = "DECLINED"
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        flow.fake.approve(paypal_order)
        flow.fake.capture_elsewhere(paypal_order)
        denied = await flow.webhook(flow.fake.capture_event(event_type, paypal_order))
        assert denied.json()["result"] == "applied"
        detail = await flow.order(bought)
        assert detail["status"] == "pending_payment"
        assert [p["status"] for p in detail["payments"]] == ["failed"]
        assert await flow.paid_messages() == 0

    async def test_forged_webhook_is_refused_and_not_stored(self, flow: Flow) -> None:
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        flow.fake.approve(paypal_order)
        flow.fake.capture_elsewhere(paypal_order)
        event = flow.fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order)
        forged = await flow.webhook(event, webhook_id="SOMEONE-ELSES-WEBHOOK")
        assert forged.status_code == 400
        assert forged.json()["error"]["code"] == "webhook_signature_invalid"
        assert await flow.count(PaymentEvent) == 0
        assert (await flow.order(bought))["status"] == "pending_payment"


class TestReconciliation:
    async def test_webhook_lost_and_customer_never_returns(self, flow: Flow) -> None:
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        flow.fake.approve(paypal_order)
        # Too early: left for the webhook and the customer.
        assert await reconcile_open_payments(flow.db, flow.registry, flow.settings) == 0
        assert flow.fake.capture_requests == []
        later = utcnow() + timedelta(minutes=15)
        assert await reconcile_open_payments(flow.db, flow.registry, flow.settings, now=later) == 1
        assert flow.fake.capture_requests == [f"capture-{paypal_order}"]
        detail = await flow.order(bought)
        assert (detail["status"], detail["amount_paid"]) == ("fulfilled", 2500)
        # Run again, then the webhook arrives after all: still paid once.
        assert await reconcile_open_payments(flow.db, flow.registry, flow.settings, now=later) == 0
        await flow.webhook(flow.fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order))
        assert await flow.paid_messages() == 1

    async def test_unapproved_order_is_left_alone(self, flow: Flow) -> None:
        bought = await flow.buy()
        later = utcnow() + timedelta(minutes=15)
        assert await reconcile_open_payments(flow.db, flow.registry, flow.settings, now=later) == 0
        assert flow.fake.capture_requests == []
        assert (await flow.order(bought))["status"] == "pending_payment"


class TestRefunds:
    async def paid(self, flow: Flow) -> dict[str, Any]:
        bought = await flow.buy()
        flow.fake.approve(order_id_of(bought))
        assert (await flow.confirm(bought)).json()["status"] == "fulfilled"
        return bought

    async def test_refund_reaches_paypal_and_its_webhook_settles_nothing_twice(self, flow: Flow) -> None:
        bought = await self.paid(flow)
        paypal_order = order_id_of(bought)
        response = await flow.client.post(
            f"/v1/orders/{bought['order']['id']}/refunds", json={"amount": 1000}, headers=flow.shop.secret
        )
        assert response.status_code == 201, response.text
        refund = response.json()
        assert refund["status"] == "succeeded"
        (asked,) = flow.fake.refund_requests
        assert asked["request_id"] == refund["id"]
        assert asked["capture_id"] == flow.fake.capture_of(paypal_order)["id"]
        assert asked["body"]["amount"] == {"currency_code": "EUR", "value": "10.00"}

        made = flow.fake.capture_of(paypal_order)["refunds"][0]
        event = flow.fake.event(
            "PAYMENT.CAPTURE.REFUNDED",
            made | {"supplementary_data": {"related_ids": {"order_id": paypal_order}}},
        )
        assert (await flow.webhook(event)).json()["result"] == "ignored"
        detail = await flow.order(bought)
        assert (detail["status"], detail["amount_refunded"]) == ("partially_refunded", 1000)

    async def test_refund_made_in_paypals_dashboard_is_recorded(self, flow: Flow) -> None:
        bought = await self.paid(flow)
        paypal_order = order_id_of(bought)
        dashboard_refund = {
            "id": "RFDASHBOARD1",
            "status": "COMPLETED",
            "amount": {"currency_code": "EUR", "value": "25.00"},
            "supplementary_data": {"related_ids": {"order_id": paypal_order}},
        }
        result = await flow.webhook(flow.fake.event("PAYMENT.CAPTURE.REFUNDED", dashboard_refund))
        assert result.json()["result"] == "applied"
        detail = await flow.order(bought)
        assert (detail["status"], detail["amount_refunded"]) == ("refunded", 2500)


async def test_no_webhook_id_configured_refuses_and_stores_nothing(
    db: Database, router: HostRouter, fake: FakePayPal, trust_roots: str
) -> None:
    async for flow in open_flow(db, router, fake, settings_for(db, trust_roots), webhook_id=None):
        bought = await flow.buy()
        fake.approve(order_id_of(bought))
        fake.capture_elsewhere(order_id_of(bought))
        refused = await flow.webhook(fake.capture_event("PAYMENT.CAPTURE.COMPLETED", order_id_of(bought)))
        assert refused.status_code == 400
        assert await flow.count(PaymentEvent) == 0
        assert (await flow.order(bought))["status"] == "pending_payment"


async def test_online_verification_unavailable_then_delivered(
    db: Database, router: HostRouter, fake: FakePayPal, trust_roots: str
) -> None:
    settings = settings_for(db, trust_roots, paypal_webhook_verification="online")
    async for flow in open_flow(db, router, fake, settings, webhook_id=WEBHOOK_ID):
        bought = await flow.buy()
        paypal_order = order_id_of(bought)
        fake.approve(paypal_order)
        fake.capture_elsewhere(paypal_order)
        event = fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order)
        fake.unavailable.add("verify")
        unavailable = await flow.webhook(event)
        assert unavailable.status_code == 503  # PayPal sends it again
        assert await flow.count(PaymentEvent) == 0
        fake.unavailable.clear()
        delivered = await flow.webhook(event)
        assert delivered.json()["result"] == "applied"
        assert fake.verify_requests[-1]["webhook_id"] == WEBHOOK_ID
        assert fake.cert_fetches == []
        assert (await flow.order(bought))["status"] == "fulfilled"


async def test_wrong_secret_refuses_checkout_without_revealing_it(
    db: Database, router: HostRouter, fake: FakePayPal, trust_roots: str
) -> None:
    fake.apps[CLIENT_ID] = "the-secret-paypal-now-expects"
    async for flow in open_flow(db, router, fake, settings_for(db, trust_roots), webhook_id=WEBHOOK_ID):
        product = await create_product(flow.client, flow.shop)
        response = await checkout(
            flow.client,
            flow.shop,
            await cart_with(flow.client, flow.shop, (product["id"], 1)),
            provider="paypal",
        )
        assert response.status_code == 502, response.text
        assert response.json()["error"]["code"] == "provider_refused"
        assert CLIENT_SECRET not in response.text
        listed = await flow.client.get("/v1/providers", headers=flow.shop.secret)
        assert CLIENT_SECRET not in listed.text
        assert WEBHOOK_ID not in listed.text
        assert fake.create_requests == []
