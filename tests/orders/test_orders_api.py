"""The merchant's orders and customers over HTTP: filters, cursor pages, the detail view, cancel."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.orders.expiry import expire_due_orders
from tests.flows.helpers import (
    Shop,
    buy,
    cart_with,
    checkout,
    confirm,
    create_product,
    deliver,
    open_shop,
    order,
)


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def place(
    client: httpx.AsyncClient, shop: Shop, product_id: str, email: str, quantity: int = 1
) -> dict[str, Any]:
    response = await checkout(
        client, shop, await cart_with(client, shop, (product_id, quantity)), email=email
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def pay(db: Database, settings: Settings, client: httpx.AsyncClient, placed: dict[str, Any]) -> None:
    await confirm(client, placed["payment"]["id"])
    await deliver(db, settings, client)


async def list_ids(client: httpx.AsyncClient, shop: Shop, **params: Any) -> list[str]:
    response = await client.get("/v1/orders", params={"limit": 100, **params}, headers=shop.secret)
    assert response.status_code == 200, response.text
    return [listed["id"] for listed in response.json()["data"]]


def raw_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@dataclass
class History:
    """Three orders, oldest first: Ada's (pending), Bob's (canceled), Ada's again (paid, fulfilled)."""

    first: dict[str, Any]
    second: dict[str, Any]
    third: dict[str, Any]


@pytest.fixture
async def history(db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop) -> History:
    product = await create_product(client, shop, price=1000, stock=20)
    first = await place(client, shop, product["id"], "ada@example.com")
    second = await place(client, shop, product["id"], "bob@example.com", quantity=2)
    third = await place(client, shop, product["id"], "ada@example.com", quantity=3)
    assert (
        await client.post(f"/v1/orders/{second['order']['id']}/cancel", headers=shop.secret)
    ).status_code == 200
    await pay(db, settings, client, third)
    return History(first=first["order"], second=second["order"], third=third["order"])


class TestListFilters:
    async def test_no_filter_lists_every_order_newest_first(
        self, client: httpx.AsyncClient, shop: Shop, history: History
    ) -> None:
        response = await client.get("/v1/orders", headers=shop.secret)
        body = response.json()
        assert (body["object"], body["has_more"], body["next_cursor"]) == ("list", False, None)
        assert [o["id"] for o in body["data"]] == [
            history.third["id"],
            history.second["id"],
            history.first["id"],
        ]
        assert [o["status"] for o in body["data"]] == ["fulfilled", "canceled", "pending_payment"]

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("pending_payment", ["first"]),
            ("canceled", ["second"]),
            ("fulfilled", ["third"]),
            ("refunded", []),
        ],
    )
    async def test_status(
        self, client: httpx.AsyncClient, shop: Shop, history: History, status: str, expected: list[str]
    ) -> None:
        ids = [getattr(history, name)["id"] for name in expected]
        assert await list_ids(client, shop, status=status) == ids

    async def test_customer_email_ignores_case_and_spaces(
        self, client: httpx.AsyncClient, shop: Shop, history: History
    ) -> None:
        ada = [history.third["id"], history.first["id"]]
        assert await list_ids(client, shop, customer_email="ada@example.com") == ada
        assert await list_ids(client, shop, customer_email=" ADA@Example.com ") == ada
        assert await list_ids(client, shop, customer_email="bob@example.com") == [history.second["id"]]
        assert await list_ids(client, shop, customer_email="nobody@example.com") == []
        assert await list_ids(client, shop, customer_email="ada@example.com", status="fulfilled") == [
            history.third["id"]
        ]

    async def test_created_window(self, client: httpx.AsyncClient, shop: Shop, history: History) -> None:
        first, second, third = history.first, history.second, history.third
        assert await list_ids(client, shop, created_gte=second["created"]) == [third["id"], second["id"]]
        assert await list_ids(client, shop, created_lt=second["created"]) == [first["id"]]
        assert await list_ids(client, shop, created_gte=second["created"], created_lt=third["created"]) == [
            second["id"]
        ]
        assert await list_ids(client, shop, created_gte=third["created"], created_lt=third["created"]) == []

    async def test_created_window_in_another_offset_is_the_same_instant(
        self, client: httpx.AsyncClient, shop: Shop, history: History
    ) -> None:
        plus_two = timezone(timedelta(hours=2))
        boundary = datetime.fromisoformat(history.second["created"]).astimezone(plus_two).isoformat()
        assert "+02:00" in boundary
        assert await list_ids(client, shop, created_gte=boundary) == [
            history.third["id"],
            history.second["id"],
        ]

    @pytest.mark.parametrize(
        ("params", "param"),
        [
            ({"status": "lost"}, "status"),
            ({"created_gte": "yesterday"}, "created_gte"),
            ({"created_gte": "2026-01-01T00:00:00"}, "created_gte"),  # no offset: which instant?
            ({"created_lt": "2026-01-01T00:00:00"}, "created_lt"),
            ({"created_lt": "9999-12-31T23:59:59-05:00"}, "created_lt"),  # past year 9999 in UTC
            ({"created_lt": "0.5"}, "created_lt"),  # seconds since 1970 are not RFC 3339 (schemathesis)
            ({"limit": 0}, "limit"),
            ({"limit": 101}, "limit"),
            ({"customer_email": "x" * 321}, "customer_email"),
        ],
    )
    async def test_invalid_filters_are_422(
        self, client: httpx.AsyncClient, shop: Shop, params: dict[str, Any], param: str
    ) -> None:
        response = await client.get("/v1/orders", params=params, headers=shop.secret)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "validation_error",
            param,
        )


class TestPagination:
    async def test_pages_are_newest_first_without_gaps_or_duplicates(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, kind="digital", stock=None)
        placed = [(await buy(client, shop, product["id"]))["order"]["id"] for _ in range(5)]
        everything = await list_ids(client, shop)
        assert everything == list(reversed(placed))

        seen: list[str] = []
        shapes: list[tuple[int, bool, bool]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/orders", params=params, headers=shop.secret)).json()
            shapes.append((len(page["data"]), page["has_more"], page["next_cursor"] is not None))
            seen += [listed["id"] for listed in page["data"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert shapes == [(2, True, True), (2, True, True), (1, False, False)]
        assert seen == everything

    async def test_a_page_boundary_holds_while_new_orders_arrive(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, kind="digital", stock=None)
        placed = [(await buy(client, shop, product["id"]))["order"]["id"] for _ in range(3)]
        first = (await client.get("/v1/orders", params={"limit": 2}, headers=shop.secret)).json()
        await buy(client, shop, product["id"])  # newer than every page already handed out
        rest = (
            await client.get(
                "/v1/orders", params={"limit": 2, "cursor": first["next_cursor"]}, headers=shop.secret
            )
        ).json()
        assert [o["id"] for o in first["data"]] + [o["id"] for o in rest["data"]] == list(reversed(placed))
        assert rest["has_more"] is False

    async def test_filters_apply_across_pages(self, client: httpx.AsyncClient, shop: Shop) -> None:
        product = await create_product(client, shop, kind="digital", stock=None)
        for email in ("ada@example.com", "bob@example.com", "ada@example.com", "ada@example.com"):
            await place(client, shop, product["id"], email)
        params = {"limit": 2, "customer_email": "ada@example.com"}
        first = (await client.get("/v1/orders", params=params, headers=shop.secret)).json()
        rest = (
            await client.get(
                "/v1/orders", params={**params, "cursor": first["next_cursor"]}, headers=shop.secret
            )
        ).json()
        assert (len(first["data"]), first["has_more"], len(rest["data"]), rest["has_more"]) == (
            2,
            True,
            1,
            False,
        )
        ids = [o["id"] for o in first["data"] + rest["data"]]
        assert ids == await list_ids(client, shop, customer_email="ada@example.com")

    @pytest.mark.parametrize(
        "cursor",
        [
            "garbage",
            "!!!!",
            "=",
            raw_cursor({"a": 1}),
            raw_cursor(["2026-01-01T00:00:00+00:00"]),
            raw_cursor([1, 2]),
            raw_cursor(["not a time", "ord_x"]),
            raw_cursor(["2026-01-01T00:00:00", "ord_x"]),  # a time without an offset
            raw_cursor(["9999-12-31T23:59:59-05:00", "ord_x"]),  # past year 9999 in UTC
            "x" * 201,
        ],
    )
    async def test_a_cursor_this_api_did_not_return_is_422(
        self, client: httpx.AsyncClient, shop: Shop, cursor: str
    ) -> None:
        response = await client.get("/v1/orders", params={"cursor": cursor}, headers=shop.secret)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("validation_error", "cursor")


class TestOrderDetail:
    async def test_detail_has_lines_payments_refunds_and_timeline(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        shirt = await create_product(client, shop, name="Shirt", price=2500, stock=5)
        mug = await create_product(client, shop, name="Mug", price=800, stock=None)
        response = await checkout(
            client, shop, await cart_with(client, shop, (shirt["id"], 2), (mug["id"], 1))
        )
        placed = response.json()

        detail = await order(client, shop, placed["order"]["id"])
        assert set(detail) == {
            "id",
            "object",
            "number",
            "livemode",
            "status",
            "version",
            "customer_id",
            "currency",
            "subtotal",
            "discount",
            "total",
            "amount_paid",
            "amount_refunded",
            "provider",
            "review_reason",
            "expires_at",
            "paid_at",
            "fulfilled_at",
            "canceled_at",
            "created",
            "customer",
            "promo",
            "items",
            "payments",
            "refunds",
            "entitlements",
            "timeline",
        }
        assert (detail["id"], detail["number"], detail["object"]) == (
            placed["order"]["id"],
            placed["order"]["number"],
            "order",
        )
        assert (detail["status"], detail["version"], detail["provider"]) == ("pending_payment", 1, "sandbox")
        assert (detail["subtotal"], detail["discount"], detail["total"]) == (5800, 0, 5800)
        assert (detail["amount_paid"], detail["amount_refunded"]) == (0, 0)
        assert detail["customer_id"].startswith("cus_")
        assert sorted((i["name"], i["unit_amount"], i["quantity"], i["amount"]) for i in detail["items"]) == [
            ("Mug", 800, 1, 800),
            ("Shirt", 2500, 2, 5000),
        ]
        assert detail["payments"] == [placed["payment"]]
        assert detail["refunds"] == []
        assert detail["customer"] == {"id": detail["customer_id"], "email": "ada@example.com", "name": "Ada"}
        assert (detail["promo"], detail["entitlements"]) == (None, [])
        assert [entry["action"] for entry in detail["timeline"]] == [
            "order.created",
            "payment_attempt.created",
        ]
        (actor,) = {entry["actor"] for entry in detail["timeline"]}  # the storefront's key placed it
        assert actor.startswith("key:")
        assert detail["timeline"][1]["details"]["amount"] == 5800

    async def test_unknown_order_is_404(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await client.get("/v1/orders/ord_nothing", headers=shop.secret)
        assert response.status_code == 404
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "resource_missing",
            "id",
        )


class TestCancel:
    async def test_cancel_releases_the_stock_and_a_second_cancel_changes_nothing(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=5)
        placed = await buy(client, shop, product["id"], quantity=3)
        order_id = placed["order"]["id"]
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["reserved"], stock["available"]) == (3, 2)

        canceled = await client.post(f"/v1/orders/{order_id}/cancel", headers=shop.secret)
        assert canceled.status_code == 200, canceled.text
        body = canceled.json()
        assert (body["status"], body["version"]) == ("canceled", 2)
        assert body["canceled_at"] is not None
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["on_hand"], stock["reserved"], stock["available"]) == (5, 0, 5)

        again = await client.post(f"/v1/orders/{order_id}/cancel", headers=shop.secret)
        assert again.status_code == 200
        assert again.json() == body
        detail = await order(client, shop, order_id)
        assert [entry["action"] for entry in detail["timeline"]].count("order.canceled") == 1
        assert detail["payments"][0]["status"] == "requires_action"
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert stock["reserved"] == 0

    async def test_a_paid_order_cannot_be_canceled(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=5)
        placed = await buy(client, shop, product["id"], quantity=2)
        await pay(db, settings, client, placed)
        response = await client.post(f"/v1/orders/{placed['order']['id']}/cancel", headers=shop.secret)
        assert response.status_code == 409
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("conflict_error", "invalid_transition")
        detail = await order(client, shop, placed["order"]["id"])
        assert (detail["status"], detail["canceled_at"], detail["amount_paid"]) == (
            "fulfilled",
            None,
            2500 * 2,
        )
        stock = (await client.get(f"/v1/products/{product['id']}/inventory", headers=shop.secret)).json()
        assert (stock["on_hand"], stock["reserved"]) == (3, 0)

    async def test_an_expired_order_cannot_be_canceled(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        product = await create_product(client, shop, stock=5)
        placed = await buy(client, shop, product["id"])
        await expire_due_orders(db, now=utcnow() + timedelta(minutes=31))
        response = await client.post(f"/v1/orders/{placed['order']['id']}/cancel", headers=shop.secret)
        assert (response.status_code, response.json()["error"]["code"]) == (409, "invalid_transition")
        assert (await order(client, shop, placed["order"]["id"]))["status"] == "expired"

    async def test_unknown_order_cannot_be_canceled(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await client.post("/v1/orders/ord_nothing/cancel", headers=shop.secret)
        assert response.status_code == 404


class TestCustomers:
    async def test_list_and_email_filter(
        self, client: httpx.AsyncClient, shop: Shop, history: History
    ) -> None:
        listed = (await client.get("/v1/customers", headers=shop.secret)).json()
        assert [c["email"] for c in listed["data"]] == ["bob@example.com", "ada@example.com"]
        assert listed["has_more"] is False

        ada = (
            await client.get("/v1/customers", params={"email": " ADA@example.com"}, headers=shop.secret)
        ).json()
        assert [c["email"] for c in ada["data"]] == ["ada@example.com"]
        assert ada["data"][0]["id"] == (await order(client, shop, history.first["id"]))["customer_id"]
        none = (
            await client.get("/v1/customers", params={"email": "eve@example.com"}, headers=shop.secret)
        ).json()
        assert none["data"] == []

        page = (await client.get("/v1/customers", params={"limit": 1}, headers=shop.secret)).json()
        rest = (
            await client.get(
                "/v1/customers", params={"limit": 1, "cursor": page["next_cursor"]}, headers=shop.secret
            )
        ).json()
        assert [c["email"] for c in page["data"] + rest["data"]] == ["bob@example.com", "ada@example.com"]
        assert (page["has_more"], rest["has_more"]) == (True, False)

    async def test_customer_detail_counts_only_paid_orders(
        self, client: httpx.AsyncClient, shop: Shop, history: History
    ) -> None:
        ada_id = (await order(client, shop, history.first["id"]))["customer_id"]
        assert (await order(client, shop, history.third["id"]))["customer_id"] == ada_id
        ada = (await client.get(f"/v1/customers/{ada_id}", headers=shop.secret)).json()
        assert (ada["object"], ada["email"], ada["name"], ada["livemode"]) == (
            "customer",
            "ada@example.com",
            "Ada",
            False,
        )
        assert (ada["total_orders"], ada["total_spent"]) == (1, {"EUR": 3000})

        bob_id = (await order(client, shop, history.second["id"]))["customer_id"]
        bob = (await client.get(f"/v1/customers/{bob_id}", headers=shop.secret)).json()
        assert (bob["total_orders"], bob["total_spent"]) == (0, {})

    async def test_unknown_customer_is_404(self, client: httpx.AsyncClient, shop: Shop) -> None:
        response = await client.get("/v1/customers/cus_nobody", headers=shop.secret)
        assert response.status_code == 404
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            "resource_missing",
            "id",
        )
