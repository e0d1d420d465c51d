"""The merchant's products over HTTP: create, list, read, change, soft delete, stock; and what the
storefront sees of them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paycore.catalog.models import Product
from paycore.db import Database
from tests.flows.helpers import Shop, buy, cart_with, checkout, create_product, open_shop


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def product_rows(db: Database, tenant_id: str) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(Product).where(Product.tenant_id == tenant_id)
        )
    return int(count or 0)


async def inventory(client: httpx.AsyncClient, shop: Shop, product_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/products/{product_id}/inventory", headers=shop.secret)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def storefront_products(client: httpx.AsyncClient, shop: Shop) -> dict[str, dict[str, Any]]:
    response = await client.get("/v1/storefront/products", params={"limit": 100}, headers=shop.publishable)
    assert response.status_code == 200, response.text
    return {product["id"]: product for product in response.json()["data"]}


VALID = {"name": "T-shirt", "price": 2500, "currency": "EUR", "kind": "physical"}


class TestCreateProduct:
    async def test_created_product_is_returned_with_its_defaults(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        response = await client.post(
            "/v1/products",
            json={**VALID, "currency": "eur", "sku": "TS-RED-M", "description": "Red, medium"},
            headers=shop.secret,
        )
        assert response.status_code == 201, response.text
        product = response.json()
        assert product["id"].startswith("prod_")
        assert product["object"] == "product"
        assert product["livemode"] is False
        assert (product["name"], product["sku"], product["description"]) == (
            "T-shirt",
            "TS-RED-M",
            "Red, medium",
        )
        assert (product["price"], product["currency"], product["kind"]) == (2500, "EUR", "physical")
        assert product["fulfillment"] == {"type": "stock", "config": {}}
        assert (product["active"], product["deleted"]) == (True, False)

        read = await client.get(f"/v1/products/{product['id']}", headers=shop.secret)
        assert read.status_code == 200
        assert read.json() == product

    @pytest.mark.parametrize(
        ("kind", "fulfillment"),
        [("digital", "entitlement"), ("service", "entitlement"), ("physical", "stock")],
    )
    async def test_fulfillment_defaults_to_the_kind(
        self, client: httpx.AsyncClient, shop: Shop, kind: str, fulfillment: str
    ) -> None:
        product = await create_product(client, shop, kind=kind, stock=None)
        assert product["fulfillment"] == {"type": fulfillment, "config": {}}

    @pytest.mark.parametrize(
        ("change", "param"),
        [
            ({"price": 25.99}, "price"),
            ({"price": 2500.0}, "price"),  # a float, even a whole one, is not minor units
            ({"price": "2500"}, "price"),
            ({"price": True}, "price"),
            ({"price": -1}, "price"),
            ({"price": 10**15 + 1}, "price"),
            ({"price": None}, "price"),
            ({"currency": "EURO"}, "currency"),
            ({"currency": "XYZ"}, "currency"),
            ({"name": ""}, "name"),
            ({"name": "x" * 201}, "name"),
            ({"kind": "food"}, "kind"),
            ({"sku": "has space"}, "sku"),
            ({"colour": "red"}, "colour"),
            ({"fulfillment": {"type": "teleport"}}, "fulfillment.type"),
        ],
    )
    async def test_invalid_body_is_422_naming_the_field_and_writes_nothing(
        self, db: Database, client: httpx.AsyncClient, shop: Shop, change: dict[str, Any], param: str
    ) -> None:
        response = await client.post("/v1/products", json={**VALID, **change}, headers=shop.secret)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "validation_error",
            param,
        )
        assert await product_rows(db, shop.tenant_id) == 0

    @pytest.mark.parametrize("missing", ["name", "price", "currency", "kind"])
    async def test_required_fields(
        self, db: Database, client: httpx.AsyncClient, shop: Shop, missing: str
    ) -> None:
        body = {key: value for key, value in VALID.items() if key != missing}
        response = await client.post("/v1/products", json=body, headers=shop.secret)
        assert response.status_code == 422
        assert response.json()["error"]["param"] == missing
        assert await product_rows(db, shop.tenant_id) == 0

    async def test_body_that_is_not_json_is_400(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        response = await client.post(
            "/v1/products",
            content=b"{name: T-shirt",
            headers={**shop.secret, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"
        assert await product_rows(db, shop.tenant_id) == 0

    async def test_duplicate_sku_is_409_and_keeps_the_first(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        first = await client.post("/v1/products", json={**VALID, "sku": "TS-1"}, headers=shop.secret)
        assert first.status_code == 201
        second = await client.post(
            "/v1/products", json={**VALID, "sku": "TS-1", "name": "Other"}, headers=shop.secret
        )
        assert second.status_code == 409
        error = second.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("conflict_error", "sku_exists", "sku")
        assert await product_rows(db, shop.tenant_id) == 1
        listed = (await client.get("/v1/products", headers=shop.secret)).json()["data"]
        assert [(p["id"], p["name"]) for p in listed] == [(first.json()["id"], "T-shirt")]

    async def test_products_without_sku_do_not_collide_and_skus_are_per_tenant(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        for _ in range(2):
            assert (await client.post("/v1/products", json=VALID, headers=shop.secret)).status_code == 201
        other = await open_shop(db)
        for owner in (shop, other):
            response = await client.post("/v1/products", json={**VALID, "sku": "SAME"}, headers=owner.secret)
            assert response.status_code == 201, response.text


class TestListAndRead:
    async def test_list_is_newest_first_and_pages_without_gaps(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        created = [(await create_product(client, shop, name=f"P{n}", stock=None))["id"] for n in range(5)]
        seen: list[str] = []
        cursor: str | None = None
        pages = []
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/products", params=params, headers=shop.secret)).json()
            pages.append((len(page["data"]), page["has_more"]))
            seen += [product["id"] for product in page["data"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                assert cursor is None
                break
        assert pages == [(2, True), (2, True), (1, False)]
        assert seen == list(reversed(created))

    async def test_unknown_product_is_404(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await client.get("/v1/products/prod_doesnotexist", headers=shop.secret)
        assert response.status_code == 404
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("not_found_error", "resource_missing", "id")


class TestUpdateProduct:
    async def test_patch_changes_only_the_fields_sent(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, price=2500, name="Mug", stock=None)
        renamed = await client.patch(
            f"/v1/products/{product['id']}", json={"name": "Big mug"}, headers=shop.secret
        )
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["name"], renamed.json()["price"]) == ("Big mug", 2500)

        repriced = await client.patch(
            f"/v1/products/{product['id']}", json={"price": 1999}, headers=shop.secret
        )
        assert repriced.status_code == 200, repriced.text
        assert (repriced.json()["name"], repriced.json()["price"]) == ("Big mug", 1999)

        read = (await client.get(f"/v1/products/{product['id']}", headers=shop.secret)).json()
        assert (read["name"], read["price"], read["currency"]) == ("Big mug", 1999, "EUR")
        assert read["updated"] >= read["created"]

    async def test_patch_sets_fulfillment_and_clears_description(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        response = await client.post(
            "/v1/products", json={**VALID, "kind": "service", "description": "Hosting"}, headers=shop.secret
        )
        product_id = response.json()["id"]
        fulfillment = {"type": "entitlement", "config": {"access": "course-2027"}}
        changed = await client.patch(
            f"/v1/products/{product_id}",
            json={"fulfillment": fulfillment, "description": None},
            headers=shop.secret,
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["fulfillment"], changed.json()["description"]) == (fulfillment, None)

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"price": -5}, "price"),
            ({"price": 9.5}, "price"),
            ({"price": None}, "price"),
            ({"name": None}, "name"),
            ({"active": None}, "active"),
            ({"fulfillment": None}, "fulfillment"),
            ({"currency": "USD"}, "currency"),  # the currency of a product never changes
            ({"kind": "digital"}, "kind"),
        ],
    )
    async def test_invalid_patch_is_422_and_changes_nothing(
        self, client: httpx.AsyncClient, shop: Shop, body: dict[str, Any], param: str
    ) -> None:
        product = await create_product(client, shop, stock=None)
        response = await client.patch(f"/v1/products/{product['id']}", json=body, headers=shop.secret)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["param"] == param
        assert (await client.get(f"/v1/products/{product['id']}", headers=shop.secret)).json() == product

    async def test_empty_patch_is_422(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, stock=None)
        response = await client.patch(f"/v1/products/{product['id']}", json={}, headers=shop.secret)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"

    async def test_deactivated_product_leaves_the_storefront_and_can_come_back(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=None)
        off = await client.patch(f"/v1/products/{product['id']}", json={"active": False}, headers=shop.secret)
        assert off.json()["active"] is False
        assert product["id"] not in await storefront_products(client, shop)
        await client.patch(f"/v1/products/{product['id']}", json={"active": True}, headers=shop.secret)
        assert product["id"] in await storefront_products(client, shop)


class TestDeleteProduct:
    async def test_delete_is_soft(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, stock=3)
        assert product["id"] in await storefront_products(client, shop)

        deleted = await client.delete(f"/v1/products/{product['id']}", headers=shop.secret)
        assert deleted.status_code == 200, deleted.text
        assert (deleted.json()["deleted"], deleted.json()["active"]) == (True, False)

        read = await client.get(f"/v1/products/{product['id']}", headers=shop.secret)
        assert read.status_code == 200
        assert (read.json()["deleted"], read.json()["name"]) == (True, product["name"])
        listed = (await client.get("/v1/products", headers=shop.secret)).json()["data"]
        assert [(p["id"], p["deleted"]) for p in listed] == [(product["id"], True)]
        assert product["id"] not in await storefront_products(client, shop)

    async def test_deleted_product_cannot_be_changed_and_deleting_again_changes_nothing(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=None)
        first = await client.delete(f"/v1/products/{product['id']}", headers=shop.secret)
        patched = await client.patch(
            f"/v1/products/{product['id']}", json={"active": True}, headers=shop.secret
        )
        assert patched.status_code == 409
        assert (patched.json()["error"]["type"], patched.json()["error"]["code"]) == (
            "conflict_error",
            "product_deleted",
        )
        again = await client.delete(f"/v1/products/{product['id']}", headers=shop.secret)
        assert again.status_code == 200
        assert again.json() == first.json()

    async def test_orders_keep_a_deleted_product(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, name="Poster", price=900, stock=None)
        bought = await buy(client, shop, product["id"], quantity=2)
        await client.delete(f"/v1/products/{product['id']}", headers=shop.secret)
        detail = (await client.get(f"/v1/orders/{bought['order']['id']}", headers=shop.secret)).json()
        assert [(i["product_id"], i["name"], i["amount"]) for i in detail["items"]] == [
            (product["id"], "Poster", 1800)
        ]

    async def test_unknown_product_cannot_be_deleted(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await client.delete("/v1/products/prod_nothing", headers=shop.secret)
        assert response.status_code == 404


class TestInventory:
    async def test_untracked_product_has_no_numbers(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, kind="digital", stock=None)
        assert await inventory(client, shop, product["id"]) == {
            "object": "inventory",
            "product_id": product["id"],
            "tracked": False,
            "on_hand": None,
            "reserved": None,
            "available": None,
        }

    async def test_available_is_on_hand_minus_reserved(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, stock=None)
        put = await client.put(
            f"/v1/products/{product['id']}/inventory", json={"on_hand": 10}, headers=shop.secret
        )
        assert put.status_code == 200, put.text
        assert (put.json()["tracked"], put.json()["on_hand"], put.json()["available"]) == (True, 10, 10)

        await buy(client, shop, product["id"], quantity=3)
        stock = await inventory(client, shop, product["id"])
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 3, 7)

        more = await client.put(
            f"/v1/products/{product['id']}/inventory", json={"on_hand": 12}, headers=shop.secret
        )
        assert (more.json()["on_hand"], more.json()["reserved"], more.json()["available"]) == (12, 3, 9)

    async def test_on_hand_cannot_go_below_what_unpaid_orders_reserve(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=5)
        await buy(client, shop, product["id"], quantity=4)
        refused = await client.put(
            f"/v1/products/{product['id']}/inventory", json={"on_hand": 3}, headers=shop.secret
        )
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert (error["code"], error["param"]) == ("inventory_below_reserved", "on_hand")
        stock = await inventory(client, shop, product["id"])
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (5, 4, 1)

        exact = await client.put(
            f"/v1/products/{product['id']}/inventory", json={"on_hand": 4}, headers=shop.secret
        )
        assert exact.status_code == 200
        assert exact.json()["available"] == 0
        sold_out = await checkout(client, shop, await cart_with(client, shop, (product["id"], 1)))
        assert sold_out.status_code == 409
        assert sold_out.json()["error"]["code"] == "out_of_stock"

    @pytest.mark.parametrize("body", [{"on_hand": -1}, {"on_hand": 1.5}, {}, {"on_hand": 3, "reserved": 0}])
    async def test_invalid_inventory_is_422(
        self, client: httpx.AsyncClient, shop: Shop, body: dict[str, Any]
    ) -> None:
        product = await create_product(client, shop, stock=5)
        response = await client.put(f"/v1/products/{product['id']}/inventory", json=body, headers=shop.secret)
        assert response.status_code == 422
        assert response.json()["error"]["param"] in {"on_hand", "reserved"}
        assert (await inventory(client, shop, product["id"]))["on_hand"] == 5

    async def test_inventory_of_unknown_product_is_404(self, client: httpx.AsyncClient, shop: Shop) -> None:
        for response in (
            await client.get("/v1/products/prod_nothing/inventory", headers=shop.secret),
            await client.put("/v1/products/prod_nothing/inventory", json={"on_hand": 1}, headers=shop.secret),
        ):
            assert response.status_code == 404


class TestStorefrontProducts:
    async def test_storefront_shows_products_on_sale_with_availability(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        tracked = await create_product(client, shop, name="Shirt", price=2500, stock=4)
        untracked = await create_product(client, shop, name="E-book", price=900, kind="digital", stock=None)
        inactive = await create_product(client, shop, name="Hidden", stock=None)
        await client.patch(f"/v1/products/{inactive['id']}", json={"active": False}, headers=shop.secret)
        deleted = await create_product(client, shop, name="Gone", stock=2)
        await client.delete(f"/v1/products/{deleted['id']}", headers=shop.secret)

        listed = await storefront_products(client, shop)
        assert set(listed) == {tracked["id"], untracked["id"]}
        assert listed[tracked["id"]] == {
            "id": tracked["id"],
            "object": "product",
            "name": "Shirt",
            "description": None,
            "price": 2500,
            "currency": "EUR",
            "kind": "physical",
            "available": 4,
        }
        assert listed[untracked["id"]]["available"] is None

        await buy(client, shop, tracked["id"], quantity=3)
        assert (await storefront_products(client, shop))[tracked["id"]]["available"] == 1

    async def test_storefront_list_is_newest_first_and_pages(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        created = [(await create_product(client, shop, name=f"P{n}", stock=None))["id"] for n in range(3)]
        first = (
            await client.get("/v1/storefront/products", params={"limit": 2}, headers=shop.publishable)
        ).json()
        assert ([p["id"] for p in first["data"]], first["has_more"]) == ([created[2], created[1]], True)
        rest = (
            await client.get(
                "/v1/storefront/products",
                params={"limit": 2, "cursor": first["next_cursor"]},
                headers=shop.publishable,
            )
        ).json()
        assert ([p["id"] for p in rest["data"]], rest["has_more"], rest["next_cursor"]) == (
            [created[0]],
            False,
            None,
        )
