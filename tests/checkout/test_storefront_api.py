"""The storefront's side of checkout over HTTP: the order behind a receipt token, and what checkout
refuses before it writes anything."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paycore.checkout.receipts import RECEIPT_HEADER, receipt_token
from paycore.config import Settings
from paycore.db import Database
from tests.flows.helpers import Shop, buy, cart_with, checkout, create_product, open_shop


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def storefront_order(
    client: httpx.AsyncClient, headers: dict[str, str], order_id: str, token: str | None
) -> httpx.Response:
    receipt = {RECEIPT_HEADER: token} if token is not None else {}
    return await client.get(f"/v1/storefront/orders/{order_id}", headers={**headers, **receipt})


def not_found(response: httpx.Response, order_id: str) -> dict[str, Any]:
    """The error without its request id: what must not differ between a hidden and a missing order."""
    assert response.status_code == 404, response.text
    error = dict(response.json()["error"])
    assert error.pop("request_id").startswith("req_")
    assert error == {
        "type": "not_found_error",
        "code": "resource_missing",
        "message": f"No such order: '{order_id}'.",
        "param": "id",
    }
    return {**error, "message": error["message"].replace(order_id, "{id}")}


class TestReceiptToken:
    async def test_the_right_token_shows_the_order(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, name="Shirt", price=2500, stock=5)
        bought = await buy(client, shop, product["id"], quantity=2)
        order_id = bought["order"]["id"]

        response = await storefront_order(client, shop.publishable, order_id, bought["receipt_token"])
        assert response.status_code == 200, response.text
        shown = response.json()
        assert shown == bought["order"]
        assert set(shown) == {
            "id",
            "object",
            "number",
            "livemode",
            "status",
            "currency",
            "subtotal",
            "discount",
            "total",
            "items",
            "expires_at",
            "paid_at",
            "created",
        }  # no customer, payments or timeline: those are the merchant's
        assert (shown["status"], shown["total"]) == ("pending_payment", 5000)
        assert [(i["product_id"], i["name"], i["quantity"], i["amount"]) for i in shown["items"]] == [
            (product["id"], "Shirt", 2, 5000)
        ]

    async def test_the_merchants_own_secret_key_may_read_it_too(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=None)
        bought = await buy(client, shop, product["id"])
        response = await storefront_order(client, shop.secret, bought["order"]["id"], bought["receipt_token"])
        assert response.status_code == 200

    async def test_missing_or_wrong_token_looks_like_no_order(
        self, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=None)
        bought = await buy(client, shop, product["id"])
        other = await buy(client, shop, product["id"])
        order_id = bought["order"]["id"]
        token = bought["receipt_token"]

        unknown_id = "ord_0000000000000000000000"
        # Even with a token that is right for the unknown id: the order does not exist.
        reference = not_found(
            await storefront_order(client, shop.publishable, unknown_id, receipt_token(settings, unknown_id)),
            unknown_id,
        )
        for wrong in (None, "", "not-a-token", token[:-1], token.upper(), other["receipt_token"]):
            response = await storefront_order(client, shop.publishable, order_id, wrong)
            assert not_found(response, order_id) == reference
            assert bought["order"]["number"] not in response.text
        assert (await storefront_order(client, shop.publishable, order_id, token)).status_code == 200

    async def test_another_tenants_key_with_the_right_token_is_404(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=None)
        bought = await buy(client, shop, product["id"])
        other = await open_shop(db)
        for headers in (other.publishable, other.secret):
            response = await storefront_order(client, headers, bought["order"]["id"], bought["receipt_token"])
            not_found(response, bought["order"]["id"])
            assert bought["order"]["number"] not in response.text

    async def test_no_key_is_401(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, stock=None)
        bought = await buy(client, shop, product["id"])
        response = await storefront_order(client, {}, bought["order"]["id"], bought["receipt_token"])
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


class TestCheckoutResponse:
    async def test_checkout_returns_the_order_the_payment_and_where_to_pay(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=1250, stock=3)
        response = await checkout(
            client, shop, await cart_with(client, shop, (product["id"], 2)), email="  Ada@Example.COM "
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == {"order", "receipt_token", "payment", "redirect_url"}
        assert (body["order"]["status"], body["order"]["total"], body["order"]["currency"]) == (
            "pending_payment",
            2500,
            "EUR",
        )
        assert body["order"]["expires_at"] > body["order"]["created"]
        payment = body["payment"]
        assert (payment["provider"], payment["status"], payment["amount"], payment["currency"]) == (
            "sandbox",
            "requires_action",
            2500,
            "EUR",
        )
        assert (
            body["redirect_url"]
            == payment["redirect_url"]
            == f"http://paycore.test/sandbox/pay/{payment['id']}"
        )
        customers = (await client.get("/v1/customers", headers=shop.secret)).json()["data"]
        assert [(c["email"], c["name"]) for c in customers] == [("ada@example.com", "Ada")]


class TestCheckoutValidation:
    @pytest.mark.parametrize(
        ("change", "param"),
        [
            ({"customer": {"email": "not-an-email"}}, "customer.email"),
            ({"customer": {"email": "ada@"}}, "customer.email"),
            ({"customer": {"email": ""}}, "customer.email"),
            ({"customer": {"name": "Ada"}}, "customer.email"),
            ({"customer": {"email": "ada@example.com", "phone": "call me"}}, "customer.phone"),
            ({"customer": {"email": "ada@example.com", "vip": True}}, "customer.vip"),
            ({"customer": None}, "customer"),
            ({"cart_id": ""}, "cart_id"),
            ({"promo_code": "X"}, "promo_code"),
            ({"shipping": "express"}, "shipping"),
        ],
    )
    async def test_invalid_checkout_is_422_and_leaves_everything_as_it_was(
        self, client: httpx.AsyncClient, shop: Shop, change: dict[str, Any], param: str
    ) -> None:
        product = await create_product(client, shop, stock=4)
        cart_id = await cart_with(client, shop, (product["id"], 1))
        body = {"cart_id": cart_id, "customer": {"email": "ada@example.com"}, **change}
        response = await client.post("/v1/checkout", json=body, headers=shop.publishable)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "validation_error",
            param,
        )

        assert (await client.get(f"/v1/carts/{cart_id}", headers=shop.publishable)).json()["status"] == "open"
        assert (await client.get("/v1/orders", headers=shop.secret)).json()["data"] == []
        assert (await client.get("/v1/customers", headers=shop.secret)).json()["data"] == []
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert stock["reserved"] == 0

    async def test_unknown_provider_is_400_and_leaves_the_cart_open(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=None)
        cart_id = await cart_with(client, shop, (product["id"], 1))
        response = await checkout(client, shop, cart_id, provider="paypal-ish")
        assert response.status_code == 400
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "unknown_provider",
            "provider",
        )
        assert (await client.get(f"/v1/carts/{cart_id}", headers=shop.publishable)).json()["status"] == "open"
