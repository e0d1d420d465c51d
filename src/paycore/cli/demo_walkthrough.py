"""The walkthrough behind `paycore demo`: a real server, real HTTP, the sandbox misbehaving.

It starts paycore in this process on a free local port, then acts as merchant, storefront and
customer through the public API: a product with 10 in stock, a cart, a checkout, a payment whose
webhook the sandbox sends three times and newest first. Then it shows what paycore made of it.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.migrations import upgrade_to_head
from paycore.money import Money
from paycore.outbox.models import OutboxMessage
from paycore.payments.models import PaymentEvent
from paycore.sandbox.delivery import deliver_due_webhooks
from paycore.serving import quiet_server

COPIES = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} → {response.status_code}: {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


async def run_walkthrough(
    settings: Settings,
    keys_file: Path,
    *,
    console: Console,
    ensure_tenant: Callable[[Settings, Path], Awaitable[tuple[dict[str, str], bool]]],
) -> None:
    port = _free_port()
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    database = Database(create_engine(settings))
    try:
        await upgrade_to_head(database.engine)
        keys, _ = await ensure_tenant(settings, keys_file)
        app = create_app(settings, database=database)
        async with (
            quiet_server(app, settings, port=port),
            httpx.AsyncClient(base_url=settings.public_url, timeout=30) as http,
        ):
            secret = {"Authorization": f"Bearer {keys['secret']}"}
            publishable = {"Authorization": f"Bearer {keys['publishable']}"}

            console.print(
                f"[bold]1.[/] paycore is serving on {settings.public_url}; the merchant adds a product"
            )
            product = _ok(
                await http.post(
                    "/v1/products",
                    json={"name": "Demo T-shirt", "price": 2500, "currency": "EUR", "kind": "physical"},
                    headers=secret,
                )
            )
            _ok(
                await http.put(
                    f"/v1/products/{product['id']}/inventory", json={"on_hand": 10}, headers=secret
                )
            )

            console.print("[bold]2.[/] a shopper fills a cart and checks out")
            cart = _ok(
                await http.post(
                    "/v1/carts",
                    json={"items": [{"product_id": product["id"], "quantity": 1}]},
                    headers=publishable,
                )
            )
            bought = _ok(
                await http.post(
                    "/v1/checkout",
                    json={
                        "cart_id": cart["id"],
                        "customer": {"email": "demo.shopper@example.com", "name": "Demo Shopper"},
                    },
                    headers={**publishable, "Idempotency-Key": str(uuid.uuid4())},
                )
            )
            order_id, attempt_id = bought["order"]["id"], bought["payment"]["id"]
            console.print(f"   order {bought['order']['number']} is pending; pay at {bought['redirect_url']}")

            console.print(
                f"[bold]3.[/] the shopper pays; the sandbox sends its webhooks {COPIES} times, newest first"
            )
            _ok(
                await http.post(
                    f"/sandbox/pay/{attempt_id}/confirm",
                    json={"outcome": "succeed", "chaos": {"copies": COPIES, "out_of_order": True}},
                )
            )
            delivered = await deliver_due_webhooks(database, settings, http)
            console.print(f"   {delivered} webhook deliveries accepted by POST /webhooks/sandbox/demo")

            order = _ok(await http.get(f"/v1/orders/{order_id}", headers=secret))
            stock = _ok(await http.get(f"/v1/products/{product['id']}/inventory", headers=secret))
            customer = _ok(await http.get(f"/v1/customers/{order['customer_id']}", headers=secret))
        await _show(console, database, order, attempt_id, stock, customer, delivered)
    finally:
        await database.dispose()


async def _show(
    console: Console,
    database: Database,
    order: dict[str, Any],
    attempt_id: str,
    stock: dict[str, Any],
    customer: dict[str, Any],
    delivered: int,
) -> None:
    paid = Money(order["amount_paid"], order["currency"]).format()
    console.print(
        f"\n[bold]Order {order['number']}[/] ({order['id']}) is [bold green]{order['status']}[/], {paid} paid"
    )
    timeline = Table("at (UTC)", "what happened", "by", title="Timeline, from the audit log")
    for entry in order["timeline"]:
        timeline.add_row(entry["at"][11:23], entry["action"], entry["actor"])
    console.print(timeline)

    async with database.session(write=False) as session:
        inbox = [
            event
            for event in await session.scalars(
                select(PaymentEvent)
                .where(PaymentEvent.received_at >= datetime.fromisoformat(order["created"]))
                .order_by(PaymentEvent.received_at)
            )
            if attempt_id in str(event.payload)
        ]
        outbox = list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.dedupe_key.like(f"%:{order['id']}"))
                .order_by(OutboxMessage.created_at)
            )
        )
    events = Table(
        "provider event", "type", "result", title=f"Webhook inbox: {delivered} deliveries, stored once each"
    )
    for event in inbox:
        events.add_row(event.provider_event_id, event.type, event.result.value if event.result else "pending")
    console.print(events)

    console.print(
        f"[bold]Stock[/] of the product: on hand {stock['on_hand']}, reserved {stock['reserved']}, "
        f"available {stock['available']}"
    )
    spent = ", ".join(
        Money(amount, currency).format() for currency, amount in customer["total_spent"].items()
    )
    console.print(
        f"[bold]Customer[/] {customer['email']}: {customer['total_orders']} paid order(s), {spent} spent"
    )

    messages = Table("channel", "message", "status", title="Outbox: what the worker will send, once each")
    for message in outbox:
        messages.add_row(message.channel.value, message.topic, message.status.value)
    console.print(messages)
    emails = sum(1 for message in outbox if message.channel.value == "email")
    console.print(
        f"{emails} email, {len(outbox) - emails} merchant webhooks — for {delivered} webhook deliveries."
    )
