"""Races the promises must survive, with real concurrency on a committed database."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import func, select

from paycore.catalog.models import Inventory
from paycore.outbox.models import OutboxMessage
from paycore.payments.models import PaymentEvent
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.signing import SIGNATURE_HEADER, sign
from tests.backends import BACKENDS
from tests.flows.conftest import LiveApp
from tests.flows.helpers import buy, cart_with, checkout, confirm, create_product, deliver, open_shop, order

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


def signed_event(live: LiveApp, tenant_id: str, payload: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    header = sign(webhook_secret(live.settings, tenant_id), int(time.time()), body)
    return body, {"content-type": "application/json", SIGNATURE_HEADER: header}


def paid_event(bought: dict[str, object], *, event_id: str, amount: int) -> dict[str, object]:
    payment = bought["payment"]
    assert isinstance(payment, dict)
    return {
        "id": event_id,
        "type": "payment.succeeded",
        "livemode": False,
        "data": {
            "payment": {
                "id": "sbpay_unknown_to_paycore",
                "merchant_reference": payment["id"],
                "amount": amount,
                "currency": "EUR",
                "status": "succeeded",
            }
        },
    }


async def count(live: LiveApp, statement: object) -> int:
    async with live.database.session(write=False) as session:
        return int(await session.scalar(statement) or 0)  # type: ignore[call-overload]


class TestWebhookStorm:
    async def test_fifty_deliveries_of_one_event_apply_once(self, live: LiveApp) -> None:
        shop = await open_shop(live.database)
        product = await create_product(live.client, shop, price=1999, stock=3)
        bought = await buy(live.client, shop, product["id"])
        body, headers = signed_event(
            live, shop.tenant_id, paid_event(bought, event_id="sbevt_storm", amount=1999)
        )

        responses = await asyncio.gather(
            *(
                live.client.post(f"/webhooks/sandbox/{shop.slug}", content=body, headers=headers)
                for _ in range(50)
            )
        )

        assert [r.status_code for r in responses] == [200] * 50
        assert sum(1 for r in responses if r.json()["duplicate"] is False) == 1
        assert await count(live, select(func.count()).select_from(PaymentEvent)) == 1
        detail = await order(live.client, shop, bought["order"]["id"])
        assert detail["status"] == "fulfilled"
        assert [e["action"] for e in detail["timeline"]].count("order.paid") == 1
        emails = (
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.topic == "email.order_paid")
        )
        assert await count(live, emails) == 1
        stock = (await live.client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["on_hand"], stock["reserved"]) == (2, 0)


class TestLastUnits:
    async def test_twenty_checkouts_for_five_units(self, live: LiveApp) -> None:
        shop = await open_shop(live.database)
        product = await create_product(live.client, shop, stock=5)
        carts = [await cart_with(live.client, shop, (product["id"], 1)) for _ in range(20)]

        responses = await asyncio.gather(*(checkout(live.client, shop, cart) for cart in carts))

        codes = sorted(r.status_code for r in responses)
        assert codes == [201] * 5 + [409] * 15
        refused = [r.json()["error"] for r in responses if r.status_code == 409]
        assert {error["code"] for error in refused} == {"out_of_stock"}
        assert all(product["id"] in error["message"] for error in refused)
        async with live.database.session(write=False) as session:
            stock = await session.get(Inventory, product["id"])
        assert stock is not None
        assert (stock.on_hand, stock.reserved) == (5, 5)
        listed = (await live.client.get("/v1/orders", headers=shop.secret)).json()["data"]
        assert len(listed) == 5


class TestCancelRacingPayment:
    async def test_one_outcome_and_the_money_is_recorded(self, live: LiveApp) -> None:
        shop = await open_shop(live.database)
        product = await create_product(live.client, shop, price=1500, stock=1)
        bought = await buy(live.client, shop, product["id"])
        order_id = bought["order"]["id"]
        body, headers = signed_event(
            live, shop.tenant_id, paid_event(bought, event_id="sbevt_race", amount=1500)
        )

        cancel, webhook = await asyncio.gather(
            live.client.post(f"/v1/orders/{order_id}/cancel", headers=shop.secret),
            live.client.post(f"/webhooks/sandbox/{shop.slug}", content=body, headers=headers),
        )

        assert webhook.status_code == 200
        assert cancel.status_code in (200, 409)
        detail = await order(live.client, shop, order_id)
        # Either the payment won (cancel refused) or the cancel won and the late payment, finding
        # its unit still free, paid the order anyway. Both ways the money is on the order.
        assert detail["status"] == "fulfilled"
        assert detail["amount_paid"] == 1500
        assert [p["status"] for p in detail["payments"]] == ["succeeded"]
        if cancel.status_code == 409:
            assert cancel.json()["error"]["code"] == "invalid_transition"
        stock = (await live.client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["on_hand"], stock["reserved"]) == (0, 0)


class TestIdempotentStorm:
    async def test_fifty_identical_posts_make_one_order(self, live: LiveApp) -> None:
        shop = await open_shop(live.database)
        product = await create_product(live.client, shop, stock=10)
        cart = await cart_with(live.client, shop, (product["id"], 2))
        payload = {"cart_id": cart, "customer": {"email": "grace@example.com"}}
        headers = {**shop.publishable, "Idempotency-Key": "checkout-7f1c"}

        async def post_until_answered() -> tuple[int, bytes, bool]:
            # A client following the spec: 409 in_use means "the first is still running, retry".
            while True:
                response = await live.client.post("/v1/checkout", json=payload, headers=headers)
                if (
                    response.status_code == 409
                    and response.json()["error"]["code"] == "idempotency_key_in_use"
                ):
                    await asyncio.sleep(0.02)
                    continue
                return (
                    response.status_code,
                    response.content,
                    response.headers.get("idempotent-replayed") == "true",
                )

        results = await asyncio.gather(*(post_until_answered() for _ in range(50)))

        assert {status for status, _, _ in results} == {201}
        assert len({content for _, content, _ in results}) == 1
        assert sum(1 for _, _, replayed in results if not replayed) == 1
        listed = (await live.client.get("/v1/orders", headers=shop.secret)).json()["data"]
        assert len(listed) == 1
        stock = (await live.client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert stock["reserved"] == 2


class TestSandboxDeliveryToItself:
    async def test_three_copies_out_of_order_pay_once(self, live: LiveApp) -> None:
        shop = await open_shop(live.database)
        product = await create_product(live.client, shop, price=900, stock=10)
        bought = await buy(live.client, shop, product["id"])
        await confirm(live.client, bought["payment"]["id"], copies=3, out_of_order=True)
        assert await deliver(live.database, live.settings, live.client) == 6
        detail = await order(live.client, shop, bought["order"]["id"])
        assert detail["status"] == "fulfilled"
        assert await count(live, select(func.count()).select_from(PaymentEvent)) == 2
