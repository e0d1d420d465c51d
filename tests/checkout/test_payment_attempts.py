"""Paying an unpaid order again: a decline or a provider that did not answer is not a dead end.

`POST /v1/storefront/orders/{id}/payment_attempts` (publishable key + receipt token) and
`POST /v1/orders/{id}/payment_attempts` (secret key) open a new attempt for an order still
`pending_payment`; at most one attempt is open at a time; the stock stays reserved once; a late
success of an earlier attempt on an order already paid is refunded, never paid twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update

from paycore.app import create_app
from paycore.checkout.receipts import RECEIPT_HEADER
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.orders.models import Order
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import PaymentRequest, PaymentSession, ProviderUnavailable
from paycore.payments.providers.registry import ProviderRegistry
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


class SwitchableSandbox:
    """The real sandbox provider, with an outage we control: `down` makes `create_payment` fail as
    unreachable; `answer_lost` makes it create the payment first and lose the answer (a timeout
    after the provider acted), which is how an earlier attempt can still be paid later."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.down = False
        self.answer_lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        if self.answer_lost:
            await self._inner.create_payment(request)
            raise ProviderUnavailable("sandbox: read timed out")
        if self.down:
            raise ProviderUnavailable("sandbox: 502 Bad Gateway")
        session: PaymentSession = await self._inner.create_payment(request)
        return session


@dataclass
class Storefront:
    client: httpx.AsyncClient
    sandbox: SwitchableSandbox


@pytest.fixture
async def front(db: Database, settings: Settings) -> AsyncIterator[Storefront]:
    app = create_app(settings, database=db)
    sandbox = SwitchableSandbox(app.state.providers.get("sandbox"))
    app.state.providers = ProviderRegistry({"sandbox": sandbox})  # type: ignore[dict-item]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.public_url
    ) as http:
        yield Storefront(client=http, sandbox=sandbox)


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


def storefront_retry(
    client: httpx.AsyncClient, shop: Shop, bought: dict[str, Any], *, token: str | None = None, **body: Any
) -> Any:
    order_id = bought["order"]["id"]
    return client.post(
        f"/v1/storefront/orders/{order_id}/payment_attempts",
        json=body or None,
        headers={**shop.publishable, RECEIPT_HEADER: token or bought["receipt_token"]},
    )


async def stock(client: httpx.AsyncClient, shop: Shop, product_id: str) -> tuple[int, int]:
    inventory = (await client.get(f"/v1/products/{product_id}/inventory", headers=shop.secret)).json()
    return inventory["on_hand"], inventory["reserved"]


async def decline(db: Database, settings: Settings, client: httpx.AsyncClient, attempt_id: str) -> None:
    declined = await confirm(client, attempt_id, "decline")
    assert declined.status_code == 200, declined.text
    assert await deliver(db, settings, client) == 1


async def pay(db: Database, settings: Settings, client: httpx.AsyncClient, attempt_id: str) -> None:
    paid = await confirm(client, attempt_id)
    assert paid.status_code == 200, paid.text
    assert await deliver(db, settings, client) == 2


async def attempt_count(db: Database, order_id: str) -> int:
    async with db.session(write=False) as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(PaymentAttempt).where(PaymentAttempt.order_id == order_id)
            )
            or 0
        )


class TestPayAgainAfterDecline:
    async def test_declined_order_is_paid_by_a_second_attempt_once(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        product = await create_product(client, shop, price=2500, stock=5)
        bought = await buy(client, shop, product["id"])
        await decline(db, settings, client, bought["payment"]["id"])

        retried = await storefront_retry(client, shop, bought)
        assert retried.status_code == 201, retried.text
        body = retried.json()
        second = body["payment"]
        assert second["id"] != bought["payment"]["id"]
        assert (second["provider"], second["status"], second["amount"]) == (
            "sandbox",
            "requires_action",
            2500,
        )
        assert body["redirect_url"] == f"{settings.public_url}/sandbox/pay/{second['id']}"
        assert body["order"]["status"] == "pending_payment"
        assert await stock(client, shop, product["id"]) == (5, 1)  # still reserved once, not twice

        await pay(db, settings, client, second["id"])
        detail = await order(client, shop, bought["order"]["id"])
        assert detail["status"] == "fulfilled"
        assert detail["amount_paid"] == 2500
        assert [(p["id"], p["status"]) for p in detail["payments"]] == [
            (bought["payment"]["id"], "failed"),
            (second["id"], "succeeded"),
        ]
        assert [entry["action"] for entry in detail["timeline"]].count("order.paid") == 1
        assert await stock(client, shop, product["id"]) == (4, 0)  # sold once

    async def test_merchant_opens_an_attempt_with_its_secret_key(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await decline(db, settings, client, bought["payment"]["id"])
        path = f"/v1/orders/{bought['order']['id']}/payment_attempts"

        refused = await client.post(path, json={}, headers=shop.publishable)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "secret_key_required")

        opened = await client.post(path, json={"provider": "sandbox"}, headers=shop.secret)
        assert opened.status_code == 201, opened.text
        assert opened.json()["payment"]["status"] == "requires_action"
        timeline = (await order(client, shop, bought["order"]["id"]))["timeline"]
        assert [entry["action"] for entry in timeline].count("payment_attempt.created") == 2

    async def test_idempotency_key_replays_the_same_attempt(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await decline(db, settings, client, bought["payment"]["id"])
        headers = {**shop.publishable, RECEIPT_HEADER: bought["receipt_token"], "Idempotency-Key": "retry-1"}
        path = f"/v1/storefront/orders/{bought['order']['id']}/payment_attempts"

        first = await client.post(path, json={}, headers=headers)
        again = await client.post(path, json={}, headers=headers)
        assert first.status_code == again.status_code == 201, again.text
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json()["payment"]["id"] == first.json()["payment"]["id"]
        assert await attempt_count(db, bought["order"]["id"]) == 2


class TestRefusals:
    async def test_wrong_receipt_token_is_not_found_and_writes_nothing(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await decline(db, settings, client, bought["payment"]["id"])
        other = await buy(client, shop, (await create_product(client, shop))["id"])

        response = await storefront_retry(client, shop, bought, token=other["receipt_token"])
        assert (response.status_code, response.json()["error"]["code"]) == (404, "resource_missing")
        assert await attempt_count(db, bought["order"]["id"]) == 1

    async def test_another_tenants_order_is_not_found(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await decline(db, settings, client, bought["payment"]["id"])
        stranger = await open_shop(db)

        merchant = await client.post(
            f"/v1/orders/{bought['order']['id']}/payment_attempts", json={}, headers=stranger.secret
        )
        storefront = await storefront_retry(client, stranger, bought)
        assert merchant.status_code == storefront.status_code == 404
        assert merchant.json()["error"]["code"] == storefront.json()["error"]["code"] == "resource_missing"
        assert await attempt_count(db, bought["order"]["id"]) == 1

    async def test_an_open_attempt_must_end_first(self, front: Storefront, shop: Shop) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])

        response = await storefront_retry(client, shop, bought)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "payment_attempt_open"
        assert bought["payment"]["id"] in response.json()["error"]["message"]

    async def test_an_attempt_whose_provider_call_was_lost_does_not_lock_the_order(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        """A process that died between checkout's two transactions leaves its attempt `created`
        for good: once well past the provider call's timeout it no longer counts as open."""
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        first = bought["payment"]["id"]

        async def left_created(age: timedelta) -> None:
            async with db.session() as session:
                await session.execute(
                    update(PaymentAttempt)
                    .where(PaymentAttempt.id == first)
                    .values(status="created", created_at=utcnow() - age)
                )

        await left_created(timedelta(seconds=1))  # its call may still be running
        still_open = await storefront_retry(client, shop, bought)
        assert (still_open.status_code, still_open.json()["error"]["code"]) == (409, "payment_attempt_open")

        await left_created(timedelta(seconds=settings.provider_timeout_seconds + 120))
        retried = await storefront_retry(client, shop, bought)
        assert retried.status_code == 201, retried.text
        detail = await order(client, shop, bought["order"]["id"])
        assert [(p["id"], p["status"]) for p in detail["payments"]] == [
            (first, "failed"),
            (retried.json()["payment"]["id"], "requires_action"),
        ]

    async def test_a_paid_order_is_not_paid_again(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop, kind="service"))["id"])
        await pay(db, settings, client, bought["payment"]["id"])

        response = await storefront_retry(client, shop, bought)
        assert (response.status_code, response.json()["error"]["code"]) == (409, "invalid_transition")
        assert await attempt_count(db, bought["order"]["id"]) == 1

    async def test_an_expired_order_is_not_paid_again(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await decline(db, settings, client, bought["payment"]["id"])
        # Its time is up, the expiry job has not run yet.
        async with db.session() as session:
            await session.execute(
                update(Order)
                .where(Order.id == bought["order"]["id"])
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )

        response = await storefront_retry(client, shop, bought)
        assert (response.status_code, response.json()["error"]["code"]) == (409, "order_expired")
        assert await attempt_count(db, bought["order"]["id"]) == 1

    async def test_unknown_provider_is_refused(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await decline(db, settings, client, bought["payment"]["id"])

        response = await storefront_retry(client, shop, bought, provider="nope")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "unknown_provider")
        assert response.json()["error"]["param"] == "provider"
        assert await attempt_count(db, bought["order"]["id"]) == 1


class TestProviderDownThenRetry:
    async def test_the_503_names_the_order_and_a_retry_pays_it(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        product = await create_product(client, shop, price=1800, stock=3)
        front.sandbox.down = True
        failed = await checkout(client, shop, await cart_with(client, shop, (product["id"], 1)))
        assert failed.status_code == 503, failed.text
        error = failed.json()["error"]
        assert error["code"] == "provider_unavailable"
        order_id = error["order"]["id"]
        retry_path = f"/v1/storefront/orders/{order_id}/payment_attempts"
        assert error["order"]["payment_attempts_url"] == retry_path
        assert order_id in error["message"] and retry_path in error["message"]
        assert await stock(client, shop, product["id"]) == (3, 1)

        front.sandbox.down = False
        retried = await client.post(
            retry_path, headers={**shop.publishable, RECEIPT_HEADER: error["order"]["receipt_token"]}
        )
        assert retried.status_code == 201, retried.text
        await pay(db, settings, client, retried.json()["payment"]["id"])

        detail = await order(client, shop, order_id)
        assert (detail["status"], detail["amount_paid"]) == ("fulfilled", 1800)
        assert [p["status"] for p in detail["payments"]] == ["failed", "succeeded"]
        assert await stock(client, shop, product["id"]) == (2, 0)

    async def test_a_retry_that_finds_the_provider_down_leaves_the_order_payable(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await decline(db, settings, client, bought["payment"]["id"])

        front.sandbox.down = True
        down = await storefront_retry(client, shop, bought)
        assert (down.status_code, down.json()["error"]["code"]) == (503, "provider_unavailable")
        front.sandbox.down = False
        again = await storefront_retry(client, shop, bought)
        assert again.status_code == 201, again.text
        assert await attempt_count(db, bought["order"]["id"]) == 3


class TestLateSuccessOfAnEarlierAttempt:
    async def test_first_attempt_paid_after_the_second_is_refunded_not_paid_twice(
        self, db: Database, settings: Settings, front: Storefront, shop: Shop
    ) -> None:
        client = front.client
        product = await create_product(client, shop, price=2500, stock=4, kind="service")
        front.sandbox.answer_lost = True  # the sandbox made payment 1, we never heard back
        failed = await checkout(client, shop, await cart_with(client, shop, (product["id"], 1)))
        assert failed.status_code == 503, failed.text
        error = failed.json()["error"]
        order_id = error["order"]["id"]
        async with db.session(write=False) as session:
            first_id = await session.scalar(
                select(PaymentAttempt.id).where(PaymentAttempt.order_id == order_id)
            )
        assert first_id is not None

        front.sandbox.answer_lost = False
        retried = await client.post(
            error["order"]["payment_attempts_url"],
            headers={**shop.publishable, RECEIPT_HEADER: error["order"]["receipt_token"]},
        )
        assert retried.status_code == 201, retried.text
        await pay(db, settings, client, retried.json()["payment"]["id"])
        # The customer finds the first payment's page after all and pays it too.
        await pay(db, settings, client, first_id)

        detail = await order(client, shop, order_id)
        assert detail["status"] == "fulfilled"
        assert detail["amount_paid"] == 2500  # paid once
        assert sorted(p["status"] for p in detail["payments"]) == ["succeeded", "succeeded"]
        assert [(r["kind"], r["amount"]) for r in detail["refunds"]] == [("duplicate_payment", 2500)]
        assert [entry["action"] for entry in detail["timeline"]].count("order.paid") == 1
        assert await stock(client, shop, product["id"]) == (3, 0)  # sold once


class TestSandboxPageAfterDecline:
    async def test_declined_page_links_back_to_the_shop(self, front: Storefront, shop: Shop) -> None:
        client = front.client
        cart = await cart_with(client, shop, ((await create_product(client, shop))["id"], 1))
        bought = await checkout(client, shop, cart, return_url="https://shop.example/return?cart=7")
        assert bought.status_code == 201, bought.text
        attempt_id = bought.json()["payment"]["id"]

        page = await client.post(
            f"/sandbox/pay/{attempt_id}",
            content="outcome=decline",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert page.status_code == 200, page.text
        assert "This payment is declined." in page.text
        assert "<script" not in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy  # still no script at all
        href = page.text.split('class="back" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        link = urlsplit(href)
        assert (link.scheme, link.netloc, link.path) == ("https", "shop.example", "/return")
        assert parse_qs(link.query) == {
            "cart": ["7"],
            "payment_attempt": [attempt_id],
            "redirect_status": ["failed"],
        }
