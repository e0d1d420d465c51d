"""Steps of the Stripe money path through paycore's HTTP API, shared by the flow tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from paycore.db import Database
from paycore.outbox.models import OutboxMessage
from paycore.payments.models import PaymentEvent
from tests.flows.helpers import Shop, cart_with, checkout, create_product, open_shop
from tests.providers.stripe.conftest import CREDENTIALS, WEBHOOK_SECRET
from tests.providers.stripe.fake import FakeStripe, signed
from tests.providers.support import set_provider


async def stripe_shop(
    db: Database, client: httpx.AsyncClient, *, webhook_secret: str | None = WEBHOOK_SECRET
) -> Shop:
    shop = await open_shop(db)
    await set_provider(client, shop, "stripe", dict(CREDENTIALS), webhook_secret=webhook_secret)
    return shop


async def start_checkout(client: httpx.AsyncClient, shop: Shop, *, price: int = 2500) -> dict[str, Any]:
    product = await create_product(client, shop, price=price, stock=5)
    response = await checkout(
        client, shop, await cart_with(client, shop, (product["id"], 1)), provider="stripe"
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def intent_of(fake: FakeStripe, started: dict[str, Any]) -> dict[str, Any]:
    (intent,) = [
        i for i in fake.intents.values() if i["metadata"]["paycore_attempt"] == started["payment"]["id"]
    ]
    return intent


async def post_event(
    client: httpx.AsyncClient, shop: Shop, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    body, headers = signed(event, secret)
    return await client.post(f"/webhooks/stripe/{shop.slug}", content=body, headers=headers)


async def merchant_events(db: Database, shop: Shop) -> list[str]:
    async with db.session(write=False) as session:
        return sorted(
            await session.scalars(
                select(OutboxMessage.topic).where(
                    OutboxMessage.tenant_id == shop.tenant_id, OutboxMessage.channel == "merchant_webhook"
                )
            )
        )


async def inbox_size(db: Database, shop: Shop) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(PaymentEvent).where(PaymentEvent.tenant_id == shop.tenant_id)
        )
    return int(count or 0)
