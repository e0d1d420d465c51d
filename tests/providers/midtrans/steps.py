"""Steps of the Midtrans money path, driven through paycore's HTTP API as a merchant's server,
a storefront and Midtrans itself would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from paycore.config import Settings
from paycore.db import Database
from paycore.outbox.models import OutboxMessage
from paycore.payments.models import PaymentEvent
from paycore.payments.providers.registry import ProviderRegistry
from tests.flows.helpers import Shop, cart_with, checkout, create_product, open_shop
from tests.providers.midtrans.fake import CLIENT_KEY, SERVER_KEY, FakeMidtrans
from tests.providers.support import set_provider

# Rp 99.000 in minor units (IDR has two minor-unit digits in ISO 4217).
PRICE = 9_900_000
# A paid physical product is fulfilled at once (stock taken): both say the money arrived.
PAID = frozenset({"paid", "fulfilled"})


@dataclass
class Paycore:
    db: Database
    settings: Settings
    client: httpx.AsyncClient
    registry: ProviderRegistry
    fake: FakeMidtrans


@dataclass
class Purchase:
    order_id: str
    attempt_id: str
    body: dict[str, Any]


async def midtrans_shop(paycore: Paycore, *, stock: int | None = 10) -> tuple[Shop, str]:
    """A shop with Midtrans test credentials and one IDR product; returns the shop and product id."""
    shop = await open_shop(paycore.db)
    await set_provider(paycore.client, shop, "midtrans", {"server_key": SERVER_KEY, "client_key": CLIENT_KEY})
    product = await create_product(paycore.client, shop, price=PRICE, currency="IDR", stock=stock)
    return shop, str(product["id"])


async def buy(paycore: Paycore, shop: Shop, product_id: str, **extra: Any) -> Purchase:
    cart = await cart_with(paycore.client, shop, (product_id, 1))
    response = await checkout(paycore.client, shop, cart, provider="midtrans", **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return Purchase(order_id=body["order"]["id"], attempt_id=body["payment"]["id"], body=body)


async def notify(paycore: Paycore, shop: Shop, notification: dict[str, Any]) -> httpx.Response:
    """Midtrans POSTs the notification to the URL set in its dashboard."""
    return await paycore.client.post(
        f"/webhooks/midtrans/{shop.slug}",
        content=json.dumps(notification).encode(),
        headers={"Content-Type": "application/json"},
    )


async def order_of(paycore: Paycore, shop: Shop, order_id: str) -> dict[str, Any]:
    response = await paycore.client.get(f"/v1/orders/{order_id}", headers=shop.secret)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_events(db: Database, tenant_id: str) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(PaymentEvent).where(PaymentEvent.tenant_id == tenant_id)
        )
    return int(count or 0)


async def outbox_topics(db: Database, tenant_id: str, topic: str) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.tenant_id == tenant_id, OutboxMessage.topic == topic)
        )
    return int(count or 0)
