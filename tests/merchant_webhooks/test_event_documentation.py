"""The merchant events the OpenAPI document describes (its `webhooks` section) are the events paycore
really sends: each delivered body fits its documented model and carries no undocumented field."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from paycore.config import Settings
from paycore.db import Database
from paycore.merchant_webhooks.events import EVENTS
from tests.flows.helpers import buy, confirm, create_product, deliver, open_shop
from tests.merchant_webhooks.test_webhook_delivery import Receiver, add_endpoint, drain, receiver, worker

__all__ = ["receiver"]  # the fixture, used by name below


def undocumented_fields(model: type[BaseModel], body: dict[str, Any], where: str) -> list[str]:
    found = [f"{where}.{name}" for name in body if name not in model.model_fields]
    for name, field in model.model_fields.items():
        nested = field.annotation
        if isinstance(body.get(name), dict) and isinstance(nested, type) and issubclass(nested, BaseModel):
            found += undocumented_fields(nested, body[name], f"{where}.{name}")
    return found


class TestDeliveredEventsMatchTheirDocumentation:
    async def test_every_event_of_a_shop_day_fits_its_model(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        receiver.secrets = [(await add_endpoint(client, shop))["secret"]]
        product = await create_product(client, shop, price=5000, kind="digital", stock=None)
        paid = await buy(client, shop, product["id"])
        await confirm(client, paid["payment"]["id"])
        declined = await buy(client, shop, product["id"])
        await confirm(client, declined["payment"]["id"], outcome="decline")
        await deliver(db, settings, client)
        refunded = await client.post(
            f"/v1/orders/{paid['order']['id']}/refunds", json={}, headers=shop.secret
        )
        assert refunded.status_code == 201, refunded.text
        canceled = await client.post(f"/v1/orders/{declined['order']['id']}/cancel", headers=shop.secret)
        assert canceled.status_code == 200, canceled.text
        await drain(worker(db, settings, receiver), rounds=10)

        seen = set()
        for delivery in receiver.received:
            body = delivery["body"]
            model, _ = EVENTS[body["type"]]
            model.model_validate(body)
            assert undocumented_fields(model, body, body["type"]) == []
            seen.add(body["type"])
        assert {
            "order.created",
            "order.paid",
            "payment.failed",
            "refund.succeeded",
            "order.refunded",
            "order.canceled",
        } <= seen
