"""Storefront carts over HTTP: lines, quantities, one currency per cart, and conversion at checkout."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paycore.carts.models import Cart
from paycore.db import Database
from tests.flows.helpers import Shop, cart_with, checkout, create_product, open_shop


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def cart_rows(db: Database, tenant_id: str) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(Cart).where(Cart.tenant_id == tenant_id)
        )
    return int(count or 0)


async def read_cart(client: httpx.AsyncClient, shop: Shop, cart_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/carts/{cart_id}", headers=shop.publishable)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def add(
    client: httpx.AsyncClient, shop: Shop, cart_id: str, product_id: str, quantity: int = 1
) -> httpx.Response:
    return await client.post(
        f"/v1/carts/{cart_id}/items",
        json={"product_id": product_id, "quantity": quantity},
        headers=shop.publishable,
    )


def lines(cart: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(item["product_id"], item["quantity"], item["amount"]) for item in cart["items"]]


class TestCreateCart:
    async def test_empty_cart(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await client.post("/v1/carts", json={}, headers=shop.publishable)
        assert response.status_code == 201, response.text
        cart = response.json()
        assert cart["id"].startswith("cart_")
        assert (cart["object"], cart["status"], cart["livemode"]) == ("cart", "open", False)
        assert (cart["currency"], cart["items"], cart["subtotal"], cart["order_id"]) == (None, [], 0, None)
        assert await read_cart(client, shop, cart["id"]) == cart

    async def test_cart_with_items(self, client: httpx.AsyncClient, shop: Shop) -> None:
        shirt = await create_product(client, shop, name="Shirt", price=2500)
        mug = await create_product(client, shop, name="Mug", price=800, stock=None)
        response = await client.post(
            "/v1/carts",
            json={
                "items": [
                    {"product_id": shirt["id"], "quantity": 2},
                    {"product_id": mug["id"], "quantity": 3},
                ]
            },
            headers=shop.publishable,
        )
        assert response.status_code == 201, response.text
        cart = response.json()
        assert cart["currency"] == "EUR"
        assert [
            (i["product_id"], i["name"], i["unit_amount"], i["quantity"], i["amount"]) for i in cart["items"]
        ] == [(shirt["id"], "Shirt", 2500, 2, 5000), (mug["id"], "Mug", 800, 3, 2400)]
        assert all(item["id"].startswith("ci_") for item in cart["items"])
        assert cart["subtotal"] == 7400

    async def test_the_same_product_twice_in_the_body_is_one_line(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=100, stock=None)
        cart = await read_cart(
            client, shop, await cart_with(client, shop, (product["id"], 2), (product["id"], 5))
        )
        assert lines(cart) == [(product["id"], 7, 700)]

    async def test_mixed_currencies_refuse_the_whole_cart(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        euros = await create_product(client, shop, currency="EUR", stock=None)
        dollars = await create_product(client, shop, currency="USD", stock=None)
        response = await client.post(
            "/v1/carts",
            json={
                "items": [
                    {"product_id": euros["id"], "quantity": 1},
                    {"product_id": dollars["id"], "quantity": 1},
                ]
            },
            headers=shop.publishable,
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "currency_mismatch",
            "product_id",
        )
        assert await cart_rows(db, shop.tenant_id) == 0

    @pytest.mark.parametrize(
        ("items", "param"),
        [
            ([{"product_id": "PRODUCT", "quantity": 0}], "items.0.quantity"),
            ([{"product_id": "PRODUCT", "quantity": 1001}], "items.0.quantity"),
            ([{"product_id": "PRODUCT", "quantity": 1.5}], "items.0.quantity"),
            ([{"product_id": "PRODUCT"}], "items.0.quantity"),
            ([{"product_id": "PRODUCT", "quantity": 1, "price": 1}], "items.0.price"),
        ],
    )
    async def test_invalid_items_are_422_and_write_nothing(
        self, db: Database, client: httpx.AsyncClient, shop: Shop, items: list[dict[str, Any]], param: str
    ) -> None:
        product = await create_product(client, shop, stock=None)
        body = {"items": [{**item, "product_id": product["id"]} for item in items]}
        response = await client.post("/v1/carts", json=body, headers=shop.publishable)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["param"] == param
        assert await cart_rows(db, shop.tenant_id) == 0

    async def test_unknown_product_is_404_and_writes_nothing(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        response = await client.post(
            "/v1/carts",
            json={"items": [{"product_id": "prod_nope", "quantity": 1}]},
            headers=shop.publishable,
        )
        assert response.status_code == 404
        assert response.json()["error"]["param"] == "product_id"
        assert await cart_rows(db, shop.tenant_id) == 0

    async def test_unknown_cart_is_404(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await client.get("/v1/carts/cart_nope", headers=shop.publishable)
        assert response.status_code == 404
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "resource_missing",
            "cart_id",
        )


class TestLines:
    async def test_adding_a_product_again_adds_to_its_quantity(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=300, stock=None)
        cart_id = await cart_with(client, shop)
        first = await add(client, shop, cart_id, product["id"], 2)
        assert first.status_code == 200, first.text
        second = await add(client, shop, cart_id, product["id"], 3)
        assert lines(second.json()) == [(product["id"], 5, 1500)]
        assert second.json()["subtotal"] == 1500
        assert second.json()["items"][0]["id"] == first.json()["items"][0]["id"]

    async def test_a_line_holds_at_most_a_thousand(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, price=1, stock=None)
        cart_id = await cart_with(client, shop, (product["id"], 999))
        response = await add(client, shop, cart_id, product["id"], 2)
        assert response.status_code == 400
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "quantity_too_large",
            "quantity",
        )
        assert lines(await read_cart(client, shop, cart_id)) == [(product["id"], 999, 999)]

    async def test_patch_sets_a_quantity_and_delete_removes_a_line(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        shirt = await create_product(client, shop, price=2500)
        mug = await create_product(client, shop, price=800, stock=None)
        cart = await read_cart(client, shop, await cart_with(client, shop, (shirt["id"], 1), (mug["id"], 1)))
        shirt_line, mug_line = (item["id"] for item in cart["items"])

        patched = await client.patch(
            f"/v1/carts/{cart['id']}/items/{shirt_line}", json={"quantity": 4}, headers=shop.publishable
        )
        assert patched.status_code == 200, patched.text
        assert lines(patched.json()) == [(shirt["id"], 4, 10000), (mug["id"], 1, 800)]
        assert patched.json()["subtotal"] == 10800

        removed = await client.delete(f"/v1/carts/{cart['id']}/items/{mug_line}", headers=shop.publishable)
        assert removed.status_code == 200, removed.text
        assert lines(removed.json()) == [(shirt["id"], 4, 10000)]
        assert await read_cart(client, shop, cart["id"]) == removed.json()

    @pytest.mark.parametrize("body", [{"quantity": 0}, {"quantity": 1001}, {}, {"quantity": 2, "note": "x"}])
    async def test_invalid_quantity_is_422_and_changes_nothing(
        self, client: httpx.AsyncClient, shop: Shop, body: dict[str, Any]
    ) -> None:
        product = await create_product(client, shop, price=100, stock=None)
        cart = await read_cart(client, shop, await cart_with(client, shop, (product["id"], 2)))
        response = await client.patch(
            f"/v1/carts/{cart['id']}/items/{cart['items'][0]['id']}", json=body, headers=shop.publishable
        )
        assert response.status_code == 422
        assert await read_cart(client, shop, cart["id"]) == cart

    async def test_unknown_line_is_404(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, price=100, stock=None)
        cart_id = await cart_with(client, shop, (product["id"], 1))
        other = await read_cart(client, shop, await cart_with(client, shop, (product["id"], 1)))
        foreign_line = other["items"][0]["id"]  # a line of another cart is not a line of this one
        for response in (
            await client.patch(
                f"/v1/carts/{cart_id}/items/ci_nope", json={"quantity": 2}, headers=shop.publishable
            ),
            await client.patch(
                f"/v1/carts/{cart_id}/items/{foreign_line}", json={"quantity": 2}, headers=shop.publishable
            ),
            await client.delete(f"/v1/carts/{cart_id}/items/{foreign_line}", headers=shop.publishable),
        ):
            assert response.status_code == 404
            assert response.json()["error"]["param"] == "item_id"
        assert lines(await read_cart(client, shop, other["id"])) == [(product["id"], 1, 100)]

    async def test_a_cart_keeps_one_currency_until_it_is_empty(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        euros = await create_product(client, shop, price=1000, currency="EUR", stock=None)
        dollars = await create_product(client, shop, price=1200, currency="USD", stock=None)
        cart = await read_cart(client, shop, await cart_with(client, shop, (euros["id"], 1)))

        refused = await add(client, shop, cart["id"], dollars["id"])
        assert refused.status_code == 400
        assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == (
            "currency_mismatch",
            "product_id",
        )
        assert await read_cart(client, shop, cart["id"]) == cart

        emptied = await client.delete(
            f"/v1/carts/{cart['id']}/items/{cart['items'][0]['id']}", headers=shop.publishable
        )
        assert (emptied.json()["currency"], emptied.json()["items"]) == (None, [])
        switched = await add(client, shop, cart["id"], dollars["id"])
        assert switched.status_code == 200, switched.text
        assert (switched.json()["currency"], switched.json()["subtotal"]) == ("USD", 1200)


class TestProductsNotOnSale:
    @pytest.mark.parametrize("state", ["deleted", "inactive"])
    async def test_cannot_be_added(self, client: httpx.AsyncClient, shop: Shop, state: str) -> None:
        product = await create_product(client, shop, stock=5)
        if state == "deleted":
            await client.delete(f"/v1/products/{product['id']}", headers=shop.secret)
        else:
            await client.patch(f"/v1/products/{product['id']}", json={"active": False}, headers=shop.secret)
        cart_id = await cart_with(client, shop)
        response = await add(client, shop, cart_id, product["id"])
        assert response.status_code == 404
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "resource_missing",
            "product_id",
        )
        assert (await read_cart(client, shop, cart_id))["items"] == []

    async def test_a_product_withdrawn_after_it_was_added_cannot_be_bought(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=5)
        cart_id = await cart_with(client, shop, (product["id"], 1))
        await client.delete(f"/v1/products/{product['id']}", headers=shop.secret)
        response = await checkout(client, shop, cart_id)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "product_unavailable"
        assert (await read_cart(client, shop, cart_id))["status"] == "open"
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert stock["reserved"] == 0


class TestCheckedOutCart:
    async def test_a_converted_cart_cannot_change_or_be_checked_out_again(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, price=2500, stock=10)
        cart_id = await cart_with(client, shop, (product["id"], 1))
        placed = await checkout(client, shop, cart_id)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order"]["id"]

        cart = await read_cart(client, shop, cart_id)
        assert (cart["status"], cart["order_id"]) == ("converted", order_id)
        line = cart["items"][0]["id"]
        for response in (
            await add(client, shop, cart_id, product["id"]),
            await client.patch(
                f"/v1/carts/{cart_id}/items/{line}", json={"quantity": 3}, headers=shop.publishable
            ),
            await client.delete(f"/v1/carts/{cart_id}/items/{line}", headers=shop.publishable),
        ):
            assert response.status_code == 409
            assert (response.json()["error"]["type"], response.json()["error"]["code"]) == (
                "conflict_error",
                "cart_converted",
            )

        again = await checkout(client, shop, cart_id, email="someone@example.com")
        assert again.status_code == 409
        assert (again.json()["error"]["code"], again.json()["error"]["param"]) == (
            "cart_converted",
            "cart_id",
        )

        assert await read_cart(client, shop, cart_id) == cart
        orders = (await client.get("/v1/orders", headers=shop.secret)).json()["data"]
        assert [o["id"] for o in orders] == [order_id]
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert stock["reserved"] == 1

    async def test_an_empty_cart_cannot_be_checked_out_and_stays_open(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        cart_id = await cart_with(client, shop)
        response = await checkout(client, shop, cart_id)
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "cart_empty",
            "cart_id",
        )
        assert (await read_cart(client, shop, cart_id))["status"] == "open"
        assert (await client.get("/v1/orders", headers=shop.secret)).json()["data"] == []

        product = await create_product(client, shop, stock=None)
        await add(client, shop, cart_id, product["id"])
        assert (await checkout(client, shop, cart_id)).status_code == 201

    async def test_a_cart_emptied_by_removing_its_lines_cannot_be_checked_out(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=None)
        cart = await read_cart(client, shop, await cart_with(client, shop, (product["id"], 1)))
        await client.delete(
            f"/v1/carts/{cart['id']}/items/{cart['items'][0]['id']}", headers=shop.publishable
        )
        response = await checkout(client, shop, cart["id"])
        assert (response.status_code, response.json()["error"]["code"]) == (400, "cart_empty")

    async def test_checkout_of_an_unknown_cart_is_404(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await checkout(client, shop, "cart_nope")
        assert response.status_code == 404
        assert response.json()["error"]["param"] == "cart_id"
