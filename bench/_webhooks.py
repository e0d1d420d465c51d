"""What the webhook benchmarks share: a shop opened through the CLI and the API, orders placed
through cart → checkout, the sandbox's payment for each, and its `payment.succeeded` event signed
as the sandbox signs it. Not a benchmark itself (the leading underscore keeps `make bench` off it)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from _support import test_mode_tenant

from paycore.sandbox.signing import SIGNATURE_HEADER, sign


@dataclass(frozen=True)
class Shop:
    tenant_id: str
    slug: str
    secret: dict[str, str]
    publishable: dict[str, str]
    product_id: str
    on_hand: int

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/sandbox/{self.slug}"


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    attempt_id: str
    amount: int
    currency: str


async def open_shop(env: dict[str, str], client: httpx.AsyncClient, *, on_hand: int) -> Shop:
    """A tenant (CLI), its test-mode keys (CLI) and one physical product with `on_hand` units (API)."""
    tenant, keys = await test_mode_tenant(env)
    product = {"name": "Bench widget", "price": 2500, "currency": "EUR", "kind": "physical"}
    created_product = await client.post("/v1/products", json=product, headers=keys["secret"])
    assert created_product.status_code == 201, created_product.text
    product_id = created_product.json()["id"]
    stocked = await client.put(
        f"/v1/products/{product_id}/inventory", json={"on_hand": on_hand}, headers=keys["secret"]
    )
    assert stocked.status_code == 200, stocked.text
    return Shop(tenant["id"], tenant["slug"], keys["secret"], keys["publishable"], product_id, on_hand)


async def place_order(client: httpx.AsyncClient, shop: Shop, email: str) -> PlacedOrder:
    """POST /v1/carts then POST /v1/checkout (sandbox provider): an order waiting for its payment."""
    item = {"product_id": shop.product_id, "quantity": 1}
    cart = await client.post("/v1/carts", json={"items": [item]}, headers=shop.publishable)
    assert cart.status_code == 201, cart.text
    body = {"cart_id": cart.json()["id"], "customer": {"email": email}}
    checkout = await client.post("/v1/checkout", json=body, headers=shop.publishable)
    assert checkout.status_code == 201, checkout.text
    return placed_order(checkout.json())


def placed_order(checkout_answer: dict[str, Any]) -> PlacedOrder:
    """What a webhook about this order needs, from POST /v1/checkout's answer."""
    payment = checkout_answer["payment"]
    return PlacedOrder(checkout_answer["order"]["id"], payment["id"], payment["amount"], payment["currency"])


async def place_orders(clients: list[httpx.AsyncClient], shop: Shop, count: int) -> list[PlacedOrder]:
    """`count` orders placed over all the clients at once (setup: not measured)."""
    numbers = iter(range(count))
    placed: list[PlacedOrder] = []
    run = secrets.token_hex(3)

    async def placer(client: httpx.AsyncClient) -> None:
        for number in numbers:
            placed.append(await place_order(client, shop, f"storm-{run}-{number}@example.com"))

    await asyncio.gather(*(placer(client) for client in clients))
    return placed


def paid_event(order: PlacedOrder, sandbox_payment_id: str) -> tuple[str, bytes]:
    """(event id, body) of the sandbox's `payment.succeeded` for this order, as sandbox/service.py
    builds it."""
    event_id = f"sbevt_{secrets.token_hex(10)}"
    payment = {
        "id": sandbox_payment_id,
        "merchant_reference": order.attempt_id,
        "amount": order.amount,
        "currency": order.currency,
        "status": "succeeded",
    }
    body = {
        "id": event_id,
        "object": "event",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {"payment": payment},
    }
    return event_id, json.dumps(body, separators=(",", ":")).encode()


def signed_headers(secret: bytes, body: bytes) -> dict[str, str]:
    """Signed now, as a provider signs each delivery (a retry of the same event carries a new t=)."""
    return {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, int(time.time()), body)}


def outcome_of(response: httpx.Response) -> str:
    """`200 applied`, `200 duplicate`, `503 webhook_store_failed`…: one label per kind of answer."""
    try:
        answer: Any = response.json()
    except ValueError:
        return f"{response.status_code} (not JSON)"
    if response.status_code == 200:
        return f"200 {'duplicate' if answer.get('duplicate') else answer.get('result', '?')}"
    try:
        return f"{response.status_code} {answer['error']['code']}"
    except (KeyError, TypeError):
        return f"{response.status_code} ?"
