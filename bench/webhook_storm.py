"""Duplicate storm: N paid orders, each payment webhook delivered 25 times at once, 200 in flight.

Starts `paycore serve --workers 2` on a throwaway PostgreSQL database, opens a shop, makes N
pending orders (cart → checkout, not measured), then sends each order's signed
`payment.succeeded` event 25 times: the copies of one event are sent back to back, so they arrive
together, from 200 concurrent senders. Prints deliveries/s, latency, the answers by kind and the
server's CPU, then checks exactly-once from the database: N events stored, N orders paid (and
fulfilled), N `order_paid` emails, N `order.paid` merchant events, N units of stock sold.
Targets (issue 13): >= 600 deliveries/s with 2 workers, p99 < 1 s, no 503. Exits 1 unless every
delivery was answered 200 and everything happened exactly once.

    .venv/bin/python bench/webhook_storm.py [--orders 2000] [--copies 25] [--in-flight 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections import Counter
from typing import Any

import asyncpg
import httpx
from _support import (
    asyncpg_dsn,
    close_all,
    cpu_line,
    cpu_seconds,
    http_clients,
    latency_summary,
    paycore_cli,
    paycore_env,
    paycore_server,
    paycore_settings,
    run_main,
    throwaway_postgres,
)

from checkout import Shop, failure
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.signing import SIGNATURE_HEADER, sign

TARGET_RATE = 600.0
TARGET_P99_SECONDS = 1.0


async def storm_shop(env: dict[str, str], client: httpx.AsyncClient) -> tuple[dict[str, Any], Shop]:
    """A tenant, its keys and one physical product with stock for every order."""
    slug = f"storm-{secrets.token_hex(3)}"
    tenant = json.loads(
        await paycore_cli(env, "tenants", "create", "--slug", slug, "--name", "Storm", "--json")
    )
    keys = {}
    for kind in ("secret", "publishable"):
        created = await paycore_cli(
            env, "keys", "create", "--tenant", slug, "--mode", "test", "--kind", kind, "--json"
        )
        keys[kind] = {"Authorization": f"Bearer {json.loads(created)['key']}"}
    product = {"name": "Storm widget", "price": 2500, "currency": "EUR", "kind": "physical"}
    created_product = await client.post("/v1/products", json=product, headers=keys["secret"])
    assert created_product.status_code == 201, created_product.text
    product_id = created_product.json()["id"]
    stocked = await client.put(
        f"/v1/products/{product_id}/inventory", json={"on_hand": 10**9}, headers=keys["secret"]
    )
    assert stocked.status_code == 200, stocked.text
    return tenant, Shop(keys["publishable"], [product_id])


async def pending_orders(clients: list[httpx.AsyncClient], shop: Shop, count: int) -> list[dict[str, Any]]:
    """`count` checkouts of one unit each: (order id, attempt id, total) as checkout answered them."""
    pending = iter(range(count))
    orders: list[dict[str, Any]] = []

    async def buyer(client: httpx.AsyncClient) -> None:
        for number in pending:
            item = {"product_id": shop.products[0], "quantity": 1}
            cart = await client.post("/v1/carts", json={"items": [item]}, headers=shop.publishable)
            assert cart.status_code == 201, failure(cart)
            body = {"cart_id": cart.json()["id"], "customer": {"email": f"storm{number}@example.com"}}
            checkout = await client.post("/v1/checkout", json=body, headers=shop.publishable)
            assert checkout.status_code == 201, failure(checkout)
            orders.append(checkout.json())

    await asyncio.gather(*(buyer(client) for client in clients[:32]))
    return orders


def paid_event(order: dict[str, Any]) -> bytes:
    payment = order["payment"]
    body = {
        "id": f"sbevt_storm_{payment['id']}",
        "type": "payment.succeeded",
        "livemode": False,
        "data": {
            "payment": {
                "id": f"sbpay_storm_{payment['id']}",
                "merchant_reference": payment["id"],
                "amount": order["order"]["total"],
                "currency": order["order"]["currency"],
                "status": "succeeded",
            }
        },
    }
    return json.dumps(body).encode()


async def storm(
    clients: list[httpx.AsyncClient], path: str, secret: bytes, bodies: list[bytes], copies: int
) -> tuple[float, list[float], Counter[str]]:
    """Every body `copies` times, copies adjacent; one sender per client. (seconds, latencies, answers)"""
    deliveries = iter([body for body in bodies for _ in range(copies)])
    latencies: list[float] = []
    answers: Counter[str] = Counter()

    async def sender(client: httpx.AsyncClient) -> None:
        for body in deliveries:
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(secret, int(time.time()), body),
            }
            started = time.perf_counter()
            try:
                response = await client.post(path, content=body, headers=headers)
            except httpx.TransportError as exc:
                answers[f"transport {type(exc).__name__}"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            answer = response.json() if response.status_code == 200 else {}
            kind = "duplicate" if answer.get("duplicate") else answer.get("result", failure(response))
            answers[f"{response.status_code} {kind}"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(sender(client) for client in clients))
    return time.perf_counter() - started, latencies, answers


async def exactly_once(database_url: str, tenant_id: str) -> dict[str, int]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await connection.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM payment_events WHERE tenant_id = $1) AS events,
              (SELECT count(*) FROM orders WHERE tenant_id = $1 AND paid_at IS NOT NULL) AS paid,
              (SELECT count(*) FROM outbox WHERE tenant_id = $1 AND topic = 'email.order_paid') AS emails,
              (SELECT count(*) FROM outbox WHERE tenant_id = $1 AND topic = 'order.paid') AS merchant_events,
              (SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'order.paid') AS audit_paid,
              (SELECT coalesce(sum(i.quantity), 0) FROM order_items i JOIN orders o ON o.id = i.order_id
                 WHERE o.tenant_id = $1 AND o.paid_at IS NOT NULL) AS units_sold
            """,
            tenant_id,
        )
    finally:
        await connection.close()
    return dict(row)


async def main(arguments: argparse.Namespace) -> int:
    count, copies = arguments.orders, arguments.copies
    async with throwaway_postgres() as database_url:
        env = paycore_env(database_url, pool_size=arguments.pool_size, max_overflow=arguments.max_overflow)
        await paycore_cli(env, "db", "migrate")
        async with paycore_server(env, workers=arguments.workers) as server:
            clients = http_clients(server.base_url, arguments.in_flight)
            try:
                tenant, shop = await storm_shop(env, clients[0])
                secret = webhook_secret(paycore_settings(database_url), tenant["id"])
                path = f"/webhooks/sandbox/{tenant['slug']}"
                made = time.perf_counter()
                orders = await pending_orders(clients, shop, count)
                print(f"{count} pending orders made in {time.perf_counter() - made:.1f} s (not measured)")
                bodies = [paid_event(order) for order in orders]
                before = cpu_seconds(server.pid)
                seconds, latencies, answers = await storm(clients, path, secret, bodies, copies)
                cpu = cpu_line(before, cpu_seconds(server.pid), seconds)
            finally:
                await close_all(clients)
        counts = await exactly_once(database_url, tenant["id"])

    deliveries = count * copies
    rate = deliveries / seconds
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("inf")
    pool = f"{arguments.pool_size}+{arguments.max_overflow}"
    print(
        f"database: PostgreSQL; server: paycore serve --workers {arguments.workers}, pool {pool} per process"
    )
    print(f"{count} paid orders x {copies} deliveries of the same event, {arguments.in_flight} in flight")
    print(f"deliveries {rate:7.0f}/s   {latency_summary(latencies)}")
    print(f"  answers: {', '.join(f'{answer} x{n}' for answer, n in sorted(answers.items()))}")
    print(f"  {cpu}")
    print(f"  server CPU per delivery: {(cpu_seconds_used(cpu)) / deliveries * 1000:.2f} ms")
    print(f"  exactly once: {counts}")
    met = rate >= TARGET_RATE and p99 < TARGET_P99_SECONDS
    print(
        f"target >= {TARGET_RATE:.0f}/s and p99 < {TARGET_P99_SECONDS * 1000:.0f} ms: {'met' if met else 'MISSED'}"
    )
    answered = answers.get("200 applied", 0) + answers.get("200 duplicate", 0)
    once = all(
        counts[name] == count for name in ("events", "paid", "emails", "merchant_events", "audit_paid")
    )
    once = once and counts["units_sold"] == count and answers.get("200 applied", 0) == count
    if answered != deliveries or not once:
        print("FAILED: not every delivery answered 200, or something happened other than exactly once")
        return 1
    return 0


def cpu_seconds_used(line: str) -> float:
    """The server's seconds out of a `cpu_line`."""
    return float(line.split("server ", 1)[1].split(" s", 1)[0])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="paid orders (default 2000)")
    parser.add_argument("--copies", type=int, default=25, help="deliveries of each event (default 25)")
    parser.add_argument("--in-flight", type=int, default=200, help="concurrent senders (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="paycore serve --workers (default 2)")
    parser.add_argument("--pool-size", type=int, default=10, help="PAYCORE_DATABASE_POOL_SIZE (default 10)")
    parser.add_argument(
        "--max-overflow", type=int, default=10, help="PAYCORE_DATABASE_MAX_OVERFLOW (default 10)"
    )
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
