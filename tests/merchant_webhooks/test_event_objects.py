"""What a merchant's event carries: the object as `GET /v1/orders/{id}` renders it at that version,
so a course seller can grant access from `order.paid` alone (issue 12, point 8)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paycore.config import Settings
from paycore.db import Database
from tests.flows.helpers import Shop, cart_with, checkout, confirm, deliver, open_shop, order
from tests.merchant_webhooks.test_webhook_delivery import Receiver, add_endpoint, drain, worker


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


def without_timeline(detail: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in detail.items() if key != "timeline"}


def events(receiver: Receiver, secret: str) -> dict[str, dict[str, Any]]:
    """Each delivered event's body by type, after checking its signature with the reference library."""
    assert all(delivery["verified_with"] == [secret] for delivery in receiver.received)
    return {delivery["body"]["type"]: delivery["body"] for delivery in receiver.received}


async def buy_course(
    db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, *, outcome: str = "succeed"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A course (an entitlement) bought by Ada with a 10% promo code; the sandbox reports `outcome`."""
    response = await client.post(
        "/v1/products",
        json={
            "name": "Rust course",
            "price": 5000,
            "currency": "EUR",
            "kind": "digital",
            "fulfillment": {"type": "entitlement"},
        },
        headers=shop.secret,
    )
    assert response.status_code == 201, response.text
    course: dict[str, Any] = response.json()
    promo = await client.post(
        "/v1/promo_codes", json={"code": "LAUNCH", "percent_off": 10}, headers=shop.secret
    )
    assert promo.status_code == 201, promo.text
    bought = await checkout(
        client, shop, await cart_with(client, shop, (course["id"], 1)), promo_code="LAUNCH"
    )
    assert bought.status_code == 201, bought.text
    await confirm(client, bought.json()["payment"]["id"], outcome)
    await deliver(db, settings, client)
    return course, bought.json()


class TestOrderEvents:
    async def test_order_paid_carries_lines_customer_promo_and_entitlements(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop)
        receiver.secrets = [endpoint["secret"]]
        course, bought = await buy_course(db, settings, client, shop)
        await drain(worker(db, settings, receiver))

        paid = events(receiver, endpoint["secret"])["order.paid"]["data"]["object"]
        assert paid["object"] == "order"
        assert paid["status"] == "paid"
        assert paid["customer"] == {"id": paid["customer_id"], "email": "ada@example.com", "name": "Ada"}
        assert [(line["product_id"], line["name"], line["quantity"]) for line in paid["items"]] == [
            (course["id"], "Rust course", 1)
        ]
        assert (paid["subtotal"], paid["discount"], paid["total"], paid["currency"]) == (
            5000,
            500,
            4500,
            "EUR",
        )
        assert paid["promo"]["code"] == "LAUNCH"
        assert [(e["product_id"], e["customer_email"], e["active"]) for e in paid["entitlements"]] == [
            (course["id"], "ada@example.com", True)
        ]
        assert [(p["id"], p["status"], p["amount"]) for p in paid["payments"]] == [
            (bought["payment"]["id"], "succeeded", 4500)
        ]

    async def test_each_event_is_the_order_as_the_api_rendered_it_at_that_version(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop)
        receiver.secrets = [endpoint["secret"]]
        _, bought = await buy_course(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        by_type = events(receiver, endpoint["secret"])
        assert list(by_type) == ["order.created", "order.paid", "order.fulfilled"]

        now = without_timeline(await order(client, shop, bought["order"]["id"]))
        # Nothing changed after the last event: it is exactly what the API answers now.
        assert by_type["order.fulfilled"]["data"]["object"] == now
        # Earlier events show the order as it was then, in the same rendering.
        paid = by_type["order.paid"]["data"]["object"]
        assert paid.keys() == now.keys()
        assert (paid["version"], paid["status"], paid["fulfilled_at"]) == (now["version"] - 1, "paid", None)
        assert {k: v for k, v in paid.items() if k not in ("version", "status", "fulfilled_at")} == {
            k: v for k, v in now.items() if k not in ("version", "status", "fulfilled_at")
        }
        created = by_type["order.created"]["data"]["object"]
        assert (created["status"], created["entitlements"], created["paid_at"]) == (
            "pending_payment",
            [],
            None,
        )
        assert created["items"] == now["items"] and created["customer"] == now["customer"]
        assert [p["status"] for p in created["payments"]] == ["created"]


class TestRefundAndFailureEvents:
    async def test_refund_succeeded_carries_the_refund_and_its_order(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop, events=["refund.succeeded", "order.refunded"])
        receiver.secrets = [endpoint["secret"]]
        _, bought = await buy_course(db, settings, client, shop)
        order_id = bought["order"]["id"]
        refund = await client.post(
            f"/v1/orders/{order_id}/refunds", json={"reason": "changed my mind"}, headers=shop.secret
        )
        assert refund.status_code == 201, refund.text
        await drain(worker(db, settings, receiver))
        by_type = events(receiver, endpoint["secret"])

        refunded = by_type["refund.succeeded"]["data"]["object"]
        assert refunded["object"] == "refund"
        assert (refunded["id"], refunded["amount"], refunded["currency"], refunded["status"]) == (
            refund.json()["id"],
            4500,
            "EUR",
            "succeeded",
        )
        assert refunded["reason"] == "changed my mind"
        now = without_timeline(await order(client, shop, order_id))
        assert refunded["order"] == now == by_type["order.refunded"]["data"]["object"]
        assert now["status"] == "refunded"
        assert [e["active"] for e in now["entitlements"]] == [False]  # access taken back with the money

    async def test_payment_failed_carries_the_attempt_and_its_order(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop, events=["payment.failed"])
        receiver.secrets = [endpoint["secret"]]
        _, bought = await buy_course(db, settings, client, shop, outcome="decline")
        await drain(worker(db, settings, receiver))

        failed = events(receiver, endpoint["secret"])["payment.failed"]["data"]["object"]
        assert failed["object"] == "payment_attempt"
        assert (failed["id"], failed["status"], failed["amount"]) == (bought["payment"]["id"], "failed", 4500)
        assert failed["failure_reason"] == "card_declined"
        assert failed["order"] == without_timeline(await order(client, shop, bought["order"]["id"]))
        assert failed["order"]["customer"]["email"] == "ada@example.com"
