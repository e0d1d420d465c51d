"""paycore's HTTP API with Razorpay routed to the fake: a shop set up for it, and its money path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from paycore.checkout.receipts import RECEIPT_HEADER
from paycore.config import Settings
from paycore.db import Database
from paycore.outbox.models import OutboxMessage
from paycore.payments.models import PaymentEvent
from paycore.payments.providers.registry import ProviderRegistry
from tests.flows.helpers import Shop, cart_with, checkout, create_product, open_shop, order
from tests.providers.razorpay.conftest import WEBHOOK_SECRET
from tests.providers.razorpay.fake import HOST, FakeRazorpay
from tests.providers.support import HostRouter, api_client, set_provider


@dataclass
class Bought:
    order_id: str
    razorpay_order_id: str
    receipt_token: str
    client_data: dict[str, Any]


@dataclass
class Harness:
    db: Database
    settings: Settings
    http: httpx.AsyncClient
    registry: ProviderRegistry
    shop: Shop
    fake: FakeRazorpay

    async def buy(self, price: int = 49900) -> Bought:
        product = await create_product(self.http, self.shop, price=price, currency="INR")
        response = await checkout(
            self.http,
            self.shop,
            await cart_with(self.http, self.shop, (product["id"], 1)),
            provider="razorpay",
        )
        assert response.status_code == 201, response.text
        body = response.json()
        client_data = body["payment"]["client_data"]
        return Bought(
            body["order"]["id"], client_data["razorpay_order_id"], body["receipt_token"], client_data
        )

    async def confirm(self, bought: Bought, params: dict[str, str]) -> httpx.Response:
        return await self.http.post(
            f"/v1/checkout/{bought.order_id}/confirm",
            json={"params": params},
            headers={**self.shop.publishable, RECEIPT_HEADER: bought.receipt_token},
        )

    async def send_webhook(
        self, event: str, *, secret: str = WEBHOOK_SECRET, event_id: str | None = None, **entities: Any
    ) -> httpx.Response:
        body, headers = self.fake.webhook(event, secret=secret, event_id=event_id, **entities)
        return await self.http.post(f"/webhooks/razorpay/{self.shop.slug}", content=body, headers=headers)

    async def status(self, bought: Bought) -> str:
        detail = await order(self.http, self.shop, bought.order_id)
        status: str = detail["status"]
        return status

    async def outbox_count(self, topic: str) -> int:
        async with self.db.session(write=False) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.tenant_id == self.shop.tenant_id, OutboxMessage.topic == topic)
            )
        return int(count or 0)

    async def stored_events(self) -> int:
        async with self.db.session(write=False) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(PaymentEvent)
                .where(PaymentEvent.tenant_id == self.shop.tenant_id)
            )
        return int(count or 0)


@asynccontextmanager
async def razorpay_shop(
    db: Database, settings: Settings, fake: FakeRazorpay, *, webhook_secret: str | None = WEBHOOK_SECRET
) -> AsyncIterator[Harness]:
    async with api_client(db, settings, HostRouter({HOST: fake.app})) as (http, registry):
        shop = await open_shop(db)
        await set_provider(
            http,
            shop,
            "razorpay",
            {"key_id": fake.key_id, "key_secret": fake.key_secret},
            webhook_secret=webhook_secret,
        )
        yield Harness(db, settings, http, registry, shop, fake)
