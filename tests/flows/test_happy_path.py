from __future__ import annotations

import httpx
from sqlalchemy import select

from paycore.config import Settings
from paycore.db import Database
from paycore.outbox.models import OutboxMessage
from tests.flows.helpers import buy, confirm, create_product, deliver, open_shop, order


async def test_cart_to_fulfilled_order(db: Database, settings: Settings, client: httpx.AsyncClient) -> None:
    shop = await open_shop(db)
    product = await create_product(client, shop, price=2500, stock=10)
    bought = await buy(client, shop, product["id"], quantity=1)
    assert bought["order"]["status"] == "pending_payment"
    assert bought["redirect_url"] == f"http://paycore.test/sandbox/pay/{bought['payment']['id']}"

    inventory = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
    assert (inventory["on_hand"], inventory["reserved"], inventory["available"]) == (10, 1, 9)

    confirmed = await confirm(client, bought["payment"]["id"], copies=3, out_of_order=True)
    assert confirmed.status_code == 200, confirmed.text
    assert await deliver(db, settings, client) == 6

    detail = await order(client, shop, bought["order"]["id"])
    assert detail["status"] == "fulfilled"
    assert detail["amount_paid"] == 2500
    actions = [entry["action"] for entry in detail["timeline"]]
    assert actions == [
        "order.created",
        "payment_attempt.created",
        "payment_attempt.succeeded",
        "order.paid",
        "order.fulfilled",
    ]
    inventory = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
    assert (inventory["on_hand"], inventory["reserved"]) == (9, 0)
    customer = (await client.get(f"/v1/customers/{detail['customer_id']}", headers=shop.secret)).json()
    assert customer["total_orders"] == 1
    assert customer["total_spent"] == {"EUR": 2500}

    async with db.session(write=False) as session:
        topics = sorted(
            (row.channel.value, row.topic)
            for row in await session.scalars(
                select(OutboxMessage).where(OutboxMessage.tenant_id == shop.tenant_id)
            )
        )
    assert topics == [
        ("email", "email.order_paid"),
        ("merchant_webhook", "order.created"),
        ("merchant_webhook", "order.fulfilled"),
        ("merchant_webhook", "order.paid"),
    ]
