"""The platform operator's API, and what it enforces: a lapsed or suspended tenant stops selling
but its customers' money still settles and refunds; plan limits hold inside the writing
transaction; platform and tenant keys open only their own doors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from paycore.audit.service import Actor
from paycore.config import Settings
from paycore.db import Database
from paycore.platform.service import create_platform_key
from paycore.tenancy.models import Subscription, SubscriptionStatus
from paycore.tenancy.standing import Standing, StandingCache
from tests.flows.helpers import Shop, buy, confirm, create_product, deliver, open_shop, order

ACTOR = Actor(name="test:platform")


@pytest.fixture
async def platform(db: Database) -> dict[str, str]:
    async with db.session() as session:
        created = await create_platform_key(session, name="ops", actor=ACTOR)
    return {"Authorization": f"Bearer {created.plaintext}"}


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def make_plan(client: httpx.AsyncClient, platform: dict[str, str], **limits: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/platform/plans", json={"code": "small", "name": "Small", **limits}, headers=platform
    )
    assert response.status_code == 201, response.text
    plan: dict[str, Any] = response.json()
    return plan


async def subscribe(
    client: httpx.AsyncClient, platform: dict[str, str], tenant_id: str, plan: str, status: str = "active"
) -> httpx.Response:
    return await client.put(
        f"/v1/platform/tenants/{tenant_id}/subscription",
        json={"plan": plan, "status": status},
        headers=platform,
    )


class TestTenantsAndPlans:
    async def test_create_list_and_read_tenants_on_plans(
        self, client: httpx.AsyncClient, platform: dict[str, str]
    ) -> None:
        await make_plan(client, platform, max_products=5, max_orders_per_month=100, features=["whatsapp"])
        created = await client.post(
            "/v1/platform/tenants",
            json={"slug": "north-shop", "name": "North", "plan": "small"},
            headers=platform,
        )
        assert created.status_code == 201, created.text
        tenant = created.json()
        assert (tenant["status"], tenant["may_sell"], tenant["subscription"]["plan"]) == (
            "active",
            True,
            "small",
        )

        listed = await client.get("/v1/platform/tenants", headers=platform)
        assert tenant["id"] in [item["id"] for item in listed.json()["data"]]
        plans = await client.get("/v1/platform/plans", headers=platform)
        assert [(plan["code"], plan["max_products"]) for plan in plans.json()["data"]] == [
            ("default", None),
            ("small", 5),
        ]
        duplicate = await client.post(
            "/v1/platform/tenants", json={"slug": "north-shop", "name": "Again"}, headers=platform
        )
        assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "tenant_exists")

    async def test_an_unknown_plan_is_404(self, client: httpx.AsyncClient, platform: dict[str, str]) -> None:
        response = await client.post(
            "/v1/platform/tenants",
            json={"slug": "lost-shop", "name": "Lost", "plan": "nope"},
            headers=platform,
        )
        assert (response.status_code, response.json()["error"]["code"]) == (404, "plan_not_found")


class TestKeys:
    async def test_each_key_opens_only_its_own_doors(
        self, client: httpx.AsyncClient, platform: dict[str, str], shop: Shop
    ) -> None:
        tenant_key = await client.get("/v1/platform/tenants", headers=shop.secret)
        assert (tenant_key.status_code, tenant_key.json()["error"]["code"]) == (403, "insufficient_scope")
        no_key = await client.get("/v1/platform/tenants")
        assert no_key.status_code == 401
        forged = await client.get(
            "/v1/platform/tenants", headers={"Authorization": "Bearer plat_" + "x" * 44}
        )
        assert forged.status_code == 401
        platform_on_tenant_api = await client.get("/v1/orders", headers=platform)
        assert platform_on_tenant_api.status_code == 401


class TestSuspension:
    async def test_a_suspended_tenant_stops_selling_but_money_still_settles_and_refunds(
        self,
        db: Database,
        settings: Settings,
        client: httpx.AsyncClient,
        platform: dict[str, str],
        shop: Shop,
    ) -> None:
        product = await create_product(client, shop, price=3000)
        paid = await buy(client, shop, product["id"])
        await confirm(client, paid["payment"]["id"])
        await deliver(db, settings, client)
        unpaid = await buy(client, shop, product["id"])
        returning = await buy(client, shop, product["id"])

        suspended = await client.post(f"/v1/platform/tenants/{shop.tenant_id}/suspend", headers=platform)
        assert (suspended.status_code, suspended.json()["may_sell"]) == (200, False)
        for method, path, headers in [
            ("GET", "/v1/orders", shop.secret),
            ("POST", "/v1/products", shop.secret),
            ("GET", "/v1/storefront/products", shop.publishable),
            ("POST", "/v1/carts", shop.publishable),
        ]:
            response = await client.request(method, path, json={}, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (403, "tenant_suspended"), path

        # The customer who already paid at the provider is not lost: the webhook still settles it.
        await confirm(client, unpaid["payment"]["id"])
        assert await deliver(db, settings, client) >= 1
        # The customer coming back from the provider is confirmed too (its webhook lost).
        await confirm(client, returning["payment"]["id"], bad_signature=True)
        back = await client.post(
            f"/v1/checkout/{returning['order']['id']}/confirm",
            headers={**shop.publishable, "X-Receipt-Token": returning["receipt_token"]},
        )
        assert (back.status_code, back.json()["status"]) == (200, "fulfilled"), back.text
        # And a refund of an order already paid goes on.
        refund = await client.post(
            f"/v1/orders/{paid['order']['id']}/refunds", json={"amount": 1000}, headers=shop.secret
        )
        assert refund.status_code == 201, refund.text

        reactivated = await client.post(f"/v1/platform/tenants/{shop.tenant_id}/reactivate", headers=platform)
        assert reactivated.json()["may_sell"] is True
        assert (await order(client, shop, unpaid["order"]["id"]))["status"] in {"paid", "fulfilled"}

    @pytest.mark.parametrize(
        ("status", "sells"), [("trialing", True), ("past_due", False), ("canceled", False)]
    )
    async def test_only_an_active_or_trialing_subscription_sells(
        self, client: httpx.AsyncClient, platform: dict[str, str], shop: Shop, status: str, sells: bool
    ) -> None:
        await make_plan(client, platform)
        response = await subscribe(client, platform, shop.tenant_id, "small", status)
        assert response.json()["may_sell"] is sells
        answer = await client.get("/v1/products", headers=shop.secret)
        assert answer.status_code == (200 if sells else 403)


class TestPlanLimits:
    async def test_products_over_the_plan_are_refused_naming_the_limit(
        self, client: httpx.AsyncClient, platform: dict[str, str], shop: Shop
    ) -> None:
        await make_plan(client, platform, max_products=2)
        await subscribe(client, platform, shop.tenant_id, "small")
        await create_product(client, shop, stock=None)
        await create_product(client, shop, stock=None)
        third = await client.post(
            "/v1/products",
            json={"name": "Third", "price": 100, "currency": "EUR", "kind": "digital"},
            headers=shop.secret,
        )
        assert third.status_code == 403
        error = third.json()["error"]
        assert (error["code"], error["param"]) == ("plan_limit_reached", "max_products")

    async def test_orders_over_the_monthly_plan_are_refused_and_nothing_is_written(
        self, db: Database, client: httpx.AsyncClient, platform: dict[str, str], shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=5)
        await make_plan(client, platform, max_orders_per_month=1)
        await subscribe(client, platform, shop.tenant_id, "small")
        await buy(client, shop, product["id"])
        cart = await client.post(
            "/v1/carts",
            json={"items": [{"product_id": product["id"], "quantity": 1}]},
            headers=shop.publishable,
        )
        refused = await client.post(
            "/v1/checkout",
            json={"cart_id": cart.json()["id"], "customer": {"email": "b@example.com"}},
            headers=shop.publishable,
        )
        assert (refused.status_code, refused.json()["error"]["param"]) == (403, "max_orders_per_month")
        stock = await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)
        assert stock.json()["reserved"] == 1  # only the first order's reservation


class TestStandingCache:
    async def test_cached_for_its_ttl_and_dropped_on_change(self, db: Database, shop: Shop) -> None:
        now = [0.0]
        cache = StandingCache(ttl=600, clock=lambda: now[0])
        first: Standing = await cache.get(db, shop.tenant_id)
        assert first.may_sell
        async with db.session() as session:
            await session.execute(
                update(Subscription)
                .where(Subscription.tenant_id == shop.tenant_id)
                .values(status=SubscriptionStatus.CANCELED)
            )
        assert (await cache.get(db, shop.tenant_id)).may_sell  # still cached
        now[0] = 601
        assert not (await cache.get(db, shop.tenant_id)).may_sell
        async with db.session() as session:
            await session.execute(
                update(Subscription)
                .where(Subscription.tenant_id == shop.tenant_id)
                .values(status=SubscriptionStatus.ACTIVE)
            )
        cache.drop(shop.tenant_id)
        assert (await cache.get(db, shop.tenant_id)).may_sell
