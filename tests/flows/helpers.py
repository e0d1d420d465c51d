"""Drive the money path through the HTTP API, as a merchant's server and a storefront would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from paycore.config import Settings
from paycore.db import Database
from paycore.sandbox.delivery import deliver_due_webhooks
from tests.factories import make_api_key, make_tenant


@dataclass
class Shop:
    tenant_id: str
    slug: str
    secret: dict[str, str]
    publishable: dict[str, str]


async def open_shop(db: Database, *, slug: str | None = None) -> Shop:
    from paycore.auth.models import KeyKind

    async with db.session() as session:
        tenant = await make_tenant(session, slug=slug)
        secret = await make_api_key(session, tenant=tenant)
        publishable = await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE)
    return Shop(
        tenant_id=tenant.id,
        slug=tenant.slug,
        secret={"Authorization": f"Bearer {secret.plaintext}"},
        publishable={"Authorization": f"Bearer {publishable.plaintext}"},
    )


async def create_product(
    client: httpx.AsyncClient,
    shop: Shop,
    *,
    price: int = 2500,
    currency: str = "EUR",
    stock: int | None = 10,
    kind: str = "physical",
    name: str = "Widget",
) -> dict[str, Any]:
    response = await client.post(
        "/v1/products",
        json={"name": name, "price": price, "currency": currency, "kind": kind},
        headers=shop.secret,
    )
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    if stock is not None:
        stocked = await client.put(
            f"/v1/products/{product['id']}/inventory", json={"on_hand": stock}, headers=shop.secret
        )
        assert stocked.status_code == 200, stocked.text
    return product


async def cart_with(client: httpx.AsyncClient, shop: Shop, *lines: tuple[str, int]) -> str:
    response = await client.post(
        "/v1/carts",
        json={"items": [{"product_id": product_id, "quantity": quantity} for product_id, quantity in lines]},
        headers=shop.publishable,
    )
    assert response.status_code == 201, response.text
    cart_id: str = response.json()["id"]
    return cart_id


async def checkout(
    client: httpx.AsyncClient, shop: Shop, cart_id: str, *, email: str = "ada@example.com", **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/checkout",
        json={"cart_id": cart_id, "customer": {"email": email, "name": "Ada"}, **extra},
        headers=shop.publishable,
    )


async def verify_test_recipient(
    client: httpx.AsyncClient, shop: Shop, email: str = "ada@example.com"
) -> None:
    """Let the shop's test-mode emails reach `email` (without it they are suppressed)."""
    response = await client.post("/v1/test_email_recipients", json={"email": email}, headers=shop.secret)
    assert response.status_code == 201, response.text


async def buy(client: httpx.AsyncClient, shop: Shop, product_id: str, quantity: int = 1) -> dict[str, Any]:
    response = await checkout(client, shop, await cart_with(client, shop, (product_id, quantity)))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def confirm(
    client: httpx.AsyncClient, attempt_id: str, outcome: str = "succeed", **chaos: Any
) -> httpx.Response:
    return await client.post(f"/sandbox/pay/{attempt_id}/confirm", json={"outcome": outcome, "chaos": chaos})


async def deliver(db: Database, settings: Settings, client: httpx.AsyncClient) -> int:
    """Let the sandbox send what it has queued, to this app, over the test client."""
    return await deliver_due_webhooks(db, settings, client)


async def order(client: httpx.AsyncClient, shop: Shop, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/orders/{order_id}", headers=shop.secret)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
