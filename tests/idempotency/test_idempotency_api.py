"""Idempotency-Key over HTTP: replays, misuse, what is not saved, scope per tenant, pruning."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from paycore.auth.models import KeyMode
from paycore.catalog.models import Product
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.idempotency.service import prune_keys
from paycore.tenancy.models import Tenant
from tests.factories import make_api_key
from tests.flows.helpers import Shop, cart_with, create_product, open_shop

PRODUCT = {"name": "Shirt", "price": 2500, "currency": "EUR", "kind": "physical"}
REPLAYED = "Idempotent-Replayed"


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def product_rows(db: Database, tenant_id: str) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(Product).where(Product.tenant_id == tenant_id)
        )
    return int(count or 0)


async def post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str], key: str
) -> httpx.Response:
    return await client.post(path, json=body, headers={**headers, "Idempotency-Key": key})


class TestReplay:
    async def test_same_key_and_body_replays_the_first_response(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        first = await post(client, "/v1/products", PRODUCT, shop.secret, "create-shirt-1")
        assert first.status_code == 201, first.text
        assert REPLAYED not in first.headers

        for _ in range(2):
            again = await post(client, "/v1/products", PRODUCT, shop.secret, "create-shirt-1")
            assert again.status_code == 201
            assert again.headers[REPLAYED] == "true"
            assert again.json() == first.json()
        assert await product_rows(db, shop.tenant_id) == 1

    async def test_key_order_and_spacing_of_the_body_do_not_matter(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        first = await post(client, "/v1/products", PRODUCT, shop.secret, "spacing")
        reordered = json.dumps(dict(reversed(PRODUCT.items())), indent=2).encode()
        again = await client.post(
            "/v1/products",
            content=reordered,
            headers={**shop.secret, "Idempotency-Key": "spacing", "content-type": "application/json"},
        )
        assert (again.status_code, again.headers.get(REPLAYED)) == (201, "true")
        assert again.json()["id"] == first.json()["id"]
        assert await product_rows(db, shop.tenant_id) == 1

    async def test_a_retried_checkout_is_the_same_order(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, price=1500, stock=5)
        cart_id = await cart_with(client, shop, (product["id"], 2))
        body = {"cart_id": cart_id, "customer": {"email": "ada@example.com"}}
        first = await post(client, "/v1/checkout", body, shop.publishable, "checkout-1")
        assert first.status_code == 201, first.text
        retry = await post(client, "/v1/checkout", body, shop.publishable, "checkout-1")
        assert (retry.status_code, retry.headers.get(REPLAYED)) == (201, "true")
        assert retry.json() == first.json()

        orders = (await client.get("/v1/orders", headers=shop.secret)).json()["data"]
        assert [o["id"] for o in orders] == [first.json()["order"]["id"]]
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert stock["reserved"] == 2
        # Without the key, the same request is a second checkout of a converted cart.
        plain = await client.post("/v1/checkout", json=body, headers=shop.publishable)
        assert (plain.status_code, plain.json()["error"]["code"]) == (409, "cart_converted")

    async def test_a_refusal_is_saved_and_replayed_too(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        await post(client, "/v1/products", {**PRODUCT, "sku": "TS"}, shop.secret, "first")
        refused = await post(client, "/v1/products", {**PRODUCT, "sku": "TS"}, shop.secret, "second")
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "sku_exists")
        replayed = await post(client, "/v1/products", {**PRODUCT, "sku": "TS"}, shop.secret, "second")
        assert (replayed.status_code, replayed.headers.get(REPLAYED)) == (409, "true")
        assert replayed.json() == refused.json()
        assert await product_rows(db, shop.tenant_id) == 1

    async def test_the_key_is_ignored_outside_posts(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, stock=None)
        headers = {**shop.secret, "Idempotency-Key": "x" * 300}
        read = await client.get(f"/v1/products/{product['id']}", headers=headers)
        assert (read.status_code, read.headers.get(REPLAYED)) == (200, None)
        patched = await client.patch(f"/v1/products/{product['id']}", json={"name": "A"}, headers=headers)
        again = await client.patch(f"/v1/products/{product['id']}", json={"name": "B"}, headers=headers)
        assert (patched.status_code, again.status_code, again.json()["name"]) == (200, 200, "B")


class TestMisuse:
    async def test_same_key_with_another_body_is_refused(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        await post(client, "/v1/products", PRODUCT, shop.secret, "reused")
        response = await post(client, "/v1/products", {**PRODUCT, "price": 2600}, shop.secret, "reused")
        assert response.status_code == 422
        assert REPLAYED not in response.headers
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_reused")
        assert await product_rows(db, shop.tenant_id) == 1
        listed = (await client.get("/v1/products", headers=shop.secret)).json()["data"]
        assert [p["price"] for p in listed] == [2500]

    async def test_same_key_on_another_endpoint_is_refused(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        await post(client, "/v1/products", PRODUCT, shop.secret, "reused")
        response = await post(
            client, "/v1/promo_codes", {"code": "TEN", "percent_off": 10}, shop.secret, "reused"
        )
        assert (response.status_code, response.json()["error"]["code"]) == (422, "idempotency_key_reused")
        assert (await client.get("/v1/promo_codes", headers=shop.secret)).json()["data"] == []

    async def test_a_key_longer_than_255_characters_is_refused(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        response = await post(client, "/v1/products", PRODUCT, shop.secret, "k" * 256)
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_invalid")
        assert await product_rows(db, shop.tenant_id) == 0

        longest = await post(client, "/v1/products", PRODUCT, shop.secret, "k" * 255)
        assert longest.status_code == 201
        replay = await post(client, "/v1/products", PRODUCT, shop.secret, "k" * 255)
        assert replay.headers.get(REPLAYED) == "true"
        assert await product_rows(db, shop.tenant_id) == 1


class TestNotSaved:
    async def test_a_request_that_failed_validation_may_be_corrected_under_the_same_key(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        invalid = await post(client, "/v1/products", {**PRODUCT, "price": -1}, shop.secret, "fix-me")
        assert (invalid.status_code, invalid.json()["error"]["param"]) == (422, "price")
        corrected = await post(client, "/v1/products", PRODUCT, shop.secret, "fix-me")
        assert corrected.status_code == 201, corrected.text
        assert REPLAYED not in corrected.headers
        replay = await post(client, "/v1/products", PRODUCT, shop.secret, "fix-me")
        assert (replay.headers.get(REPLAYED), replay.json()) == ("true", corrected.json())
        assert await product_rows(db, shop.tenant_id) == 1

    async def test_malformed_json_is_not_saved(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        broken = await client.post(
            "/v1/products",
            content=b'{"name": ',
            headers={**shop.secret, "Idempotency-Key": "broken", "content-type": "application/json"},
        )
        assert (broken.status_code, broken.json()["error"]["code"]) == (400, "invalid_json")
        fixed = await post(client, "/v1/products", PRODUCT, shop.secret, "broken")
        assert fixed.status_code == 201, fixed.text
        assert await product_rows(db, shop.tenant_id) == 1

    async def test_a_request_refused_for_its_key_kind_is_not_saved(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        refused = await post(client, "/v1/products", PRODUCT, shop.publishable, "kind")
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "secret_key_required")
        allowed = await post(client, "/v1/products", PRODUCT, shop.secret, "kind")
        assert allowed.status_code == 201
        assert REPLAYED not in allowed.headers
        assert await product_rows(db, shop.tenant_id) == 1

    async def test_an_unauthenticated_request_is_not_saved(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        anonymous = await client.post("/v1/products", json=PRODUCT, headers={"Idempotency-Key": "anon"})
        assert anonymous.status_code == 401
        allowed = await post(client, "/v1/products", PRODUCT, shop.secret, "anon")
        assert (allowed.status_code, allowed.headers.get(REPLAYED)) == (201, None)


class TestScope:
    async def test_two_tenants_may_use_the_same_key(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        other = await open_shop(db)
        mine = await post(client, "/v1/products", PRODUCT, shop.secret, "order-42")
        theirs = await post(client, "/v1/products", {**PRODUCT, "price": 99}, other.secret, "order-42")
        assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
        assert REPLAYED not in theirs.headers
        assert mine.json()["id"] != theirs.json()["id"]
        assert theirs.json()["price"] == 99
        assert (await product_rows(db, shop.tenant_id), await product_rows(db, other.tenant_id)) == (1, 1)

    async def test_test_and_live_mode_keep_their_own_keys(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            live = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        test_mode = await post(client, "/v1/products", PRODUCT, shop.secret, "same")
        live_mode = await post(
            client, "/v1/products", PRODUCT, {"Authorization": f"Bearer {live.plaintext}"}, "same"
        )
        assert (test_mode.status_code, live_mode.status_code) == (201, 201)
        assert REPLAYED not in live_mode.headers
        assert (test_mode.json()["livemode"], live_mode.json()["livemode"]) == (False, True)


class TestPruning:
    async def test_keys_are_kept_for_the_ttl_then_pruned(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        ttl = timedelta(hours=settings.idempotency_key_ttl_hours)
        await post(client, "/v1/products", PRODUCT, shop.secret, "old-key")

        async with db.session() as session:
            assert await prune_keys(session, older_than=ttl, now=utcnow() + ttl - timedelta(minutes=5)) == 0
        kept = await post(client, "/v1/products", PRODUCT, shop.secret, "old-key")
        assert kept.headers.get(REPLAYED) == "true"

        async with db.session() as session:
            assert await prune_keys(session, older_than=ttl, now=utcnow() + ttl + timedelta(minutes=5)) == 1
        fresh = await post(client, "/v1/products", {**PRODUCT, "name": "Hoodie"}, shop.secret, "old-key")
        assert fresh.status_code == 201, fresh.text
        assert REPLAYED not in fresh.headers
        assert fresh.json()["name"] == "Hoodie"
        assert await product_rows(db, shop.tenant_id) == 2
