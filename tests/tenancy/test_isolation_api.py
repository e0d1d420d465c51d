"""Tenants and modes over HTTP: another tenant's objects, and the other mode's, do not exist (404,
never 403, never the data); publishable keys stay out of the merchant API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from paycore.auth.models import KeyKind, KeyMode
from paycore.config import Settings
from paycore.db import Database
from paycore.tenancy.models import Tenant
from tests.factories import make_api_key
from tests.flows.helpers import Shop, cart_with, checkout, confirm, create_product, deliver, open_shop, order

SECRET_NAME = "Tenant A's secret widget"
SECRET_EMAIL = "only-a-knows@example.com"


@dataclass
class Holdings:
    """What tenant A owns: a product with stock, an open cart, an unpaid and a paid order, a customer."""

    shop: Shop
    product: dict[str, Any]
    cart_id: str
    cart_line: str
    pending_order: str
    paid_order: str
    customer_id: str


async def place(client: httpx.AsyncClient, shop: Shop, product_id: str) -> dict[str, Any]:
    response = await checkout(
        client, shop, await cart_with(client, shop, (product_id, 1)), email=SECRET_EMAIL
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def tenant_a(db: Database, settings: Settings, client: httpx.AsyncClient) -> Holdings:
    shop = await open_shop(db)
    product = await create_product(client, shop, name=SECRET_NAME, price=4200, stock=10)
    cart_id = await cart_with(client, shop, (product["id"], 1))
    cart = (await client.get(f"/v1/carts/{cart_id}", headers=shop.publishable)).json()
    pending = await place(client, shop, product["id"])
    paid = await place(client, shop, product["id"])
    await confirm(client, paid["payment"]["id"])
    await deliver(db, settings, client)
    detail = await order(client, shop, paid["order"]["id"])
    assert detail["status"] == "fulfilled"
    return Holdings(
        shop=shop,
        product=product,
        cart_id=cart_id,
        cart_line=cart["items"][0]["id"],
        pending_order=pending["order"]["id"],
        paid_order=paid["order"]["id"],
        customer_id=detail["customer_id"],
    )


@pytest.fixture
async def tenant_b(db: Database) -> Shop:
    return await open_shop(db)


def assert_hidden(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("not_found_error", "resource_missing")
    assert SECRET_NAME not in response.text
    assert SECRET_EMAIL not in response.text


async def live_keys(db: Database, shop: Shop) -> tuple[dict[str, str], dict[str, str]]:
    async with db.session() as session:
        tenant = await session.get(Tenant, shop.tenant_id)
        assert tenant is not None
        secret = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        publishable = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE, kind=KeyKind.PUBLISHABLE)
    return {"Authorization": f"Bearer {secret.plaintext}"}, {
        "Authorization": f"Bearer {publishable.plaintext}"
    }


class TestAnotherTenantsObjects:
    async def test_products_and_stock(
        self, client: httpx.AsyncClient, tenant_a: Holdings, tenant_b: Shop
    ) -> None:
        path = f"/v1/products/{tenant_a.product['id']}"
        before = (await client.get(path, headers=tenant_a.shop.secret)).json()
        stock_before = (await client.get(f"{path}/inventory", headers=tenant_a.shop.secret)).json()
        for response in (
            await client.get(path, headers=tenant_b.secret),
            await client.patch(path, json={"price": 1, "name": "Mine now"}, headers=tenant_b.secret),
            await client.delete(path, headers=tenant_b.secret),
            await client.get(f"{path}/inventory", headers=tenant_b.secret),
            await client.put(f"{path}/inventory", json={"on_hand": 0}, headers=tenant_b.secret),
        ):
            assert_hidden(response)
        assert (await client.get(path, headers=tenant_a.shop.secret)).json() == before
        assert (await client.get(f"{path}/inventory", headers=tenant_a.shop.secret)).json() == stock_before

    async def test_carts(self, client: httpx.AsyncClient, tenant_a: Holdings, tenant_b: Shop) -> None:
        own = await create_product(client, tenant_b, stock=None)
        cart = f"/v1/carts/{tenant_a.cart_id}"
        before = (await client.get(cart, headers=tenant_a.shop.publishable)).json()
        for response in (
            await client.get(cart, headers=tenant_b.publishable),
            await client.get(cart, headers=tenant_b.secret),
            await client.post(
                f"{cart}/items", json={"product_id": own["id"], "quantity": 1}, headers=tenant_b.publishable
            ),
            await client.patch(
                f"{cart}/items/{tenant_a.cart_line}", json={"quantity": 9}, headers=tenant_b.publishable
            ),
            await client.delete(f"{cart}/items/{tenant_a.cart_line}", headers=tenant_b.publishable),
            await client.post(
                "/v1/checkout",
                json={"cart_id": tenant_a.cart_id, "customer": {"email": "b@example.com"}},
                headers=tenant_b.publishable,
            ),
        ):
            assert_hidden(response)
        assert (await client.get(cart, headers=tenant_a.shop.publishable)).json() == before

    async def test_another_tenants_product_cannot_go_into_a_cart(
        self, client: httpx.AsyncClient, tenant_a: Holdings, tenant_b: Shop
    ) -> None:
        item = {"product_id": tenant_a.product["id"], "quantity": 1}
        created = await client.post("/v1/carts", json={"items": [item]}, headers=tenant_b.publishable)
        assert_hidden(created)
        assert created.json()["error"]["param"] == "product_id"
        own_cart = await cart_with(client, tenant_b)
        assert_hidden(
            await client.post(f"/v1/carts/{own_cart}/items", json=item, headers=tenant_b.publishable)
        )

    async def test_orders(self, client: httpx.AsyncClient, tenant_a: Holdings, tenant_b: Shop) -> None:
        for order_id in (tenant_a.pending_order, tenant_a.paid_order):
            assert_hidden(await client.get(f"/v1/orders/{order_id}", headers=tenant_b.secret))
            assert_hidden(await client.post(f"/v1/orders/{order_id}/cancel", headers=tenant_b.secret))
            assert_hidden(
                await client.post(f"/v1/orders/{order_id}/refunds", json={}, headers=tenant_b.secret)
            )
        pending = await order(client, tenant_a.shop, tenant_a.pending_order)
        paid = await order(client, tenant_a.shop, tenant_a.paid_order)
        assert pending["status"] == "pending_payment"
        assert (paid["status"], paid["amount_refunded"], paid["refunds"]) == ("fulfilled", 0, [])

    async def test_customers(self, client: httpx.AsyncClient, tenant_a: Holdings, tenant_b: Shop) -> None:
        assert_hidden(await client.get(f"/v1/customers/{tenant_a.customer_id}", headers=tenant_b.secret))
        own = await client.get(f"/v1/customers/{tenant_a.customer_id}", headers=tenant_a.shop.secret)
        assert own.json()["email"] == SECRET_EMAIL

    async def test_lists_show_only_the_callers_objects(
        self, client: httpx.AsyncClient, tenant_a: Holdings, tenant_b: Shop
    ) -> None:
        await client.post(
            "/v1/promo_codes", json={"code": "A-ONLY", "percent_off": 5}, headers=tenant_a.shop.secret
        )
        for path, headers in (
            ("/v1/products", tenant_b.secret),
            ("/v1/orders", tenant_b.secret),
            ("/v1/customers", tenant_b.secret),
            ("/v1/promo_codes", tenant_b.secret),
            ("/v1/storefront/products", tenant_b.publishable),
        ):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["data"] == [], path
        filtered = await client.get(
            "/v1/orders", params={"customer_email": SECRET_EMAIL}, headers=tenant_b.secret
        )
        assert filtered.json()["data"] == []
        assert len((await client.get("/v1/orders", headers=tenant_a.shop.secret)).json()["data"]) == 2

    async def test_a_promo_code_belongs_to_its_tenant(
        self, client: httpx.AsyncClient, tenant_a: Holdings, tenant_b: Shop
    ) -> None:
        await client.post(
            "/v1/promo_codes", json={"code": "A-ONLY", "percent_off": 50}, headers=tenant_a.shop.secret
        )
        product = await create_product(client, tenant_b, stock=None)
        cart_id = await cart_with(client, tenant_b, (product["id"], 1))
        response = await client.post(
            "/v1/checkout",
            json={"cart_id": cart_id, "customer": {"email": "b@example.com"}, "promo_code": "A-ONLY"},
            headers=tenant_b.publishable,
        )
        assert (response.status_code, response.json()["error"]["code"]) == (400, "promo_code_invalid")
        # and the same code may exist at both tenants
        mine = await client.post(
            "/v1/promo_codes", json={"code": "A-ONLY", "percent_off": 5}, headers=tenant_b.secret
        )
        assert mine.status_code == 201


class TestModes:
    async def test_test_keys_do_not_see_live_objects(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        live_secret, live_publishable = await live_keys(db, shop)
        created = await client.post(
            "/v1/products",
            json={"name": SECRET_NAME, "price": 100, "currency": "EUR", "kind": "digital"},
            headers=live_secret,
        )
        assert created.status_code == 201, created.text
        live_product = created.json()
        assert live_product["livemode"] is True
        test_product = await create_product(client, shop, stock=None)

        assert_hidden(await client.get(f"/v1/products/{live_product['id']}", headers=shop.secret))
        assert_hidden(
            await client.patch(f"/v1/products/{live_product['id']}", json={"price": 1}, headers=shop.secret)
        )
        listed = (await client.get("/v1/products", headers=shop.secret)).json()["data"]
        assert [p["id"] for p in listed] == [test_product["id"]]
        storefront = (await client.get("/v1/storefront/products", headers=shop.publishable)).json()["data"]
        assert [p["id"] for p in storefront] == [test_product["id"]]
        added = await client.post(
            "/v1/carts",
            json={"items": [{"product_id": live_product["id"], "quantity": 1}]},
            headers=shop.publishable,
        )
        assert_hidden(added)

        # and the other way round
        assert_hidden(await client.get(f"/v1/products/{test_product['id']}", headers=live_secret))
        live_listed = (await client.get("/v1/products", headers=live_secret)).json()["data"]
        assert [p["id"] for p in live_listed] == [live_product["id"]]
        live_storefront = (await client.get("/v1/storefront/products", headers=live_publishable)).json()[
            "data"
        ]
        assert [p["id"] for p in live_storefront] == [live_product["id"]]

    async def test_a_live_cart_is_invisible_to_test_keys(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        _, live_publishable = await live_keys(db, shop)
        live_cart = await client.post("/v1/carts", json={}, headers=live_publishable)
        assert (live_cart.status_code, live_cart.json()["livemode"]) == (201, True)
        assert_hidden(await client.get(f"/v1/carts/{live_cart.json()['id']}", headers=shop.publishable))
        assert (
            await client.get(f"/v1/carts/{live_cart.json()['id']}", headers=live_publishable)
        ).status_code == 200


class TestKeyKinds:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/products"),
            ("POST", "/v1/products"),
            ("GET", "/v1/products/{product}"),
            ("PATCH", "/v1/products/{product}"),
            ("DELETE", "/v1/products/{product}"),
            ("GET", "/v1/products/{product}/inventory"),
            ("PUT", "/v1/products/{product}/inventory"),
            ("GET", "/v1/promo_codes"),
            ("POST", "/v1/promo_codes"),
            ("GET", "/v1/orders"),
            ("GET", "/v1/orders/{order}"),
            ("POST", "/v1/orders/{order}/cancel"),
            ("POST", "/v1/orders/{order}/refunds"),
            ("GET", "/v1/customers"),
            ("GET", "/v1/customers/{customer}"),
        ],
    )
    async def test_publishable_keys_get_403_on_the_merchant_api(
        self, client: httpx.AsyncClient, tenant_a: Holdings, method: str, path: str
    ) -> None:
        url = path.format(
            product=tenant_a.product["id"], order=tenant_a.pending_order, customer=tenant_a.customer_id
        )
        bodies = {
            "POST /v1/products": {"name": "X", "price": 1, "currency": "EUR", "kind": "digital"},
            "PATCH /v1/products/{product}": {"price": 1},
            "PUT /v1/products/{product}/inventory": {"on_hand": 0},
            "POST /v1/promo_codes": {"code": "PK", "percent_off": 5},
            "POST /v1/orders/{order}/refunds": {},
        }
        body = bodies.get(f"{method} {path}")
        response = await client.request(
            method, url, headers=tenant_a.shop.publishable, **({"json": body} if body is not None else {})
        )
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("permission_error", "secret_key_required")
        assert SECRET_NAME not in response.text

        # Nothing was changed by the refused call.
        product = (
            await client.get(f"/v1/products/{tenant_a.product['id']}", headers=tenant_a.shop.secret)
        ).json()
        assert (product["price"], product["deleted"]) == (4200, False)
        stock = (
            await client.get(f"/v1/products/{tenant_a.product['id']}/inventory", headers=tenant_a.shop.secret)
        ).json()
        assert stock["on_hand"] == 9  # ten, less the paid order's unit
        assert (await order(client, tenant_a.shop, tenant_a.pending_order))["status"] == "pending_payment"

    async def test_publishable_keys_reach_the_storefront_api(
        self, client: httpx.AsyncClient, tenant_a: Holdings
    ) -> None:
        listed = await client.get("/v1/storefront/products", headers=tenant_a.shop.publishable)
        assert listed.status_code == 200
        assert [p["id"] for p in listed.json()["data"]] == [tenant_a.product["id"]]
        cart = await client.get(f"/v1/carts/{tenant_a.cart_id}", headers=tenant_a.shop.publishable)
        assert cart.status_code == 200
