"""`POST /v1/checkout/{id}/confirm`: the customer's return is checked with the provider, never
taken on the browser's word, and moves the order at most once however often it is sent."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from paycore.checkout.receipts import RECEIPT_HEADER
from paycore.db import Database
from paycore.outbox.models import OutboxMessage
from tests.flows.helpers import Shop, buy, confirm, create_product, open_shop, order


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def confirm_return(
    client: httpx.AsyncClient, shop: Shop, bought: dict[str, object], **body: object
) -> httpx.Response:
    return await client.post(
        f"/v1/checkout/{bought['order']['id']}/confirm",  # type: ignore[index]
        json=body or None,
        headers={**shop.publishable, RECEIPT_HEADER: str(bought["receipt_token"])},
    )


async def paid_events(db: Database) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.topic == "order.paid")
        )
    return int(count or 0)


class TestConfirm:
    async def test_a_payment_whose_webhook_was_lost_is_paid_on_return_once(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1200)
        bought = await buy(client, shop, product["id"])
        # Paid at the provider; the webhook is refused (bad signature), as if lost.
        await confirm(client, bought["payment"]["id"], bad_signature=True)

        first = await confirm_return(client, shop, bought)
        assert first.status_code == 200, first.text
        assert first.json()["status"] in {"paid", "fulfilled"}
        again = await confirm_return(client, shop, bought)
        assert again.status_code == 200
        assert await paid_events(db) == 1

    async def test_before_the_customer_paid_nothing_changes(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1200)
        bought = await buy(client, shop, product["id"])
        response = await confirm_return(client, shop, bought)
        assert (response.status_code, response.json()["status"]) == (200, "pending_payment")
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "pending_payment"
        assert await paid_events(db) == 0

    async def test_a_declined_payment_leaves_the_order_payable(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1200)
        bought = await buy(client, shop, product["id"])
        await confirm(client, bought["payment"]["id"], "decline", bad_signature=True)
        response = await confirm_return(client, shop, bought)
        assert (response.status_code, response.json()["status"]) == (200, "pending_payment")
        detail = await order(client, shop, bought["order"]["id"])
        assert [payment["status"] for payment in detail["payments"]] == ["failed"]

    async def test_without_the_receipt_token_the_order_does_not_exist(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1200)
        bought = await buy(client, shop, product["id"])
        response = await client.post(
            f"/v1/checkout/{bought['order']['id']}/confirm",
            headers={**shop.publishable, RECEIPT_HEADER: "wrong"},
        )
        assert (response.status_code, response.json()["error"]["code"]) == (404, "resource_missing")

    async def test_malformed_params_are_422(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, price=1200)
        bought = await buy(client, shop, product["id"])
        response = await confirm_return(client, shop, bought, params={"x": "y" * 501})
        assert response.status_code == 422
        response = await confirm_return(client, shop, bought, params={"x": 1})
        assert response.status_code == 422
