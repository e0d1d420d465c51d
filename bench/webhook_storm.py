"""Duplicate storm: every paid order's payment webhook delivered 25 times at once.

Starts `paycore serve --workers 2` on a throwaway PostgreSQL database, places N orders (cart →
checkout, not measured), then sends each order's signed `payment.succeeded` event COPIES times
(default 25), the copies of one event next to each other in a queue that IN_FLIGHT senders (default
200, one connection each) drain — so the copies race each other, as a provider retrying a slow
endpoint makes them. Prints deliveries/s, latency percentiles, the answers by kind (503 = a pool
exhausted or the store failed) and server CPU. Targets (issue 13): >= 600 deliveries/s with 2
workers, p99 < 1 s, no 503. Then checks from the database that each order was paid exactly once:
orders paid, stock sold, customer emails and `order.paid` merchant events queued, one inbox row per
event. Exits 1 if any count is wrong or a delivery went unanswered.

    .venv/bin/python bench/webhook_storm.py [--orders 2000] [--copies 25] [--in-flight 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter

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
    percentile,
    run_main,
    throwaway_postgres,
)
from _webhooks import PlacedOrder, Shop, open_shop, outcome_of, paid_event, place_orders, signed_headers

from paycore.sandbox.credentials import webhook_secret

TARGET_RATE = 600.0
TARGET_P99_S = 1.0


async def sandbox_payment_ids(dsn: str, tenant_id: str) -> dict[str, str]:
    """attempt id → the sandbox's payment id (what the sandbox puts in its event's `payment.id`)."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT merchant_reference, id FROM sandbox_payments WHERE tenant_id = $1", tenant_id
        )
    finally:
        await connection.close()
    return {row["merchant_reference"]: row["id"] for row in rows}


async def storm(
    clients: list[httpx.AsyncClient], shop: Shop, secret: bytes, events: list[bytes], copies: int
) -> tuple[float, list[float], Counter[str]]:
    """Each event `copies` times, copies adjacent in the queue; one sender per client."""
    queue = iter([body for body in events for _ in range(copies)])
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def sender(client: httpx.AsyncClient) -> None:
        for body in queue:
            started = time.perf_counter()
            try:
                response = await client.post(
                    shop.webhook_path, content=body, headers=signed_headers(secret, body)
                )
            except httpx.TransportError as exc:
                outcomes[f"transport error {type(exc).__name__}"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            outcomes[outcome_of(response)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(sender(client) for client in clients))
    return time.perf_counter() - started, latencies, outcomes


async def exactly_once_counts(
    dsn: str, shop: Shop, orders: list[PlacedOrder], event_ids: list[str]
) -> list[str]:
    """What is wrong in the database after the storm (empty when each order was paid exactly once)."""
    order_ids = [order.order_id for order in orders]
    expected = len(orders)
    connection = await asyncpg.connect(dsn)
    try:
        checks = {
            "orders paid": await connection.fetchval(
                "SELECT count(*) FROM orders WHERE id = ANY($1) AND paid_at IS NOT NULL"
                " AND status IN ('paid', 'fulfilled')",
                order_ids,
            ),
            "amount paid once": await connection.fetchval(
                "SELECT count(*) FROM orders WHERE id = ANY($1) AND amount_paid = total", order_ids
            ),
            "attempts succeeded": await connection.fetchval(
                "SELECT count(*) FROM payment_attempts WHERE order_id = ANY($1) AND status = 'succeeded'",
                order_ids,
            ),
            "inbox rows (one per event)": await connection.fetchval(
                "SELECT count(*) FROM payment_events WHERE tenant_id = $1 AND provider_event_id = ANY($2)",
                shop.tenant_id,
                event_ids,
            ),
            "events applied": await connection.fetchval(
                "SELECT count(*) FROM payment_events WHERE tenant_id = $1 AND provider_event_id = ANY($2)"
                " AND result = 'applied'",
                shop.tenant_id,
                event_ids,
            ),
            "emails queued (order_paid)": await connection.fetchval(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND channel = 'email'"
                " AND topic = 'email.order_paid'",
                shop.tenant_id,
            ),
            "merchant events queued (order.paid)": await connection.fetchval(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND channel = 'merchant_webhook'"
                " AND topic = 'order.paid'",
                shop.tenant_id,
            ),
            "customers counted once": await connection.fetchval(
                "SELECT coalesce(sum(total_orders), 0) FROM customers WHERE tenant_id = $1", shop.tenant_id
            ),
        }
        on_hand, reserved = await connection.fetchrow(
            "SELECT on_hand, reserved FROM inventory WHERE product_id = $1", shop.product_id
        )
    finally:
        await connection.close()
    wrong = [f"{name}: {found}, expected {expected}" for name, found in checks.items() if found != expected]
    if on_hand != shop.on_hand - expected or reserved != 0:
        wrong.append(
            f"stock: on hand {on_hand} reserved {reserved}, expected {shop.on_hand - expected} and 0"
        )
    for name, found in checks.items():
        print(f"  {name:<38} {found:>7}  {'ok' if found == expected else 'WRONG'}")
    stock_ok = on_hand == shop.on_hand - expected and reserved == 0
    print(f"  {'stock on hand / reserved':<38} {on_hand:>7} / {reserved}  {'ok' if stock_ok else 'WRONG'}")
    return wrong


async def main(arguments: argparse.Namespace) -> int:
    count, copies = arguments.orders, arguments.copies
    async with throwaway_postgres() as database_url:
        dsn = asyncpg_dsn(database_url)
        env = paycore_env(database_url, pool_size=arguments.pool_size, max_overflow=arguments.max_overflow)
        await paycore_cli(env, "db", "migrate")
        async with paycore_server(env, workers=arguments.workers) as server:
            clients = http_clients(server.base_url, arguments.in_flight)
            try:
                shop = await open_shop(env, clients[0], on_hand=count + 1000)
                secret = webhook_secret(paycore_settings(database_url), shop.tenant_id)
                setup_started = time.perf_counter()
                orders = await place_orders(clients[: arguments.setup_clients], shop, count)
                setup_seconds = time.perf_counter() - setup_started
                payments = await sandbox_payment_ids(dsn, shop.tenant_id)
                events = [paid_event(order, payments[order.attempt_id]) for order in orders]
                before = cpu_seconds(server.pid)
                seconds, latencies, outcomes = await storm(
                    clients, shop, secret, [body for _, body in events], copies
                )
                cpu = cpu_line(before, cpu_seconds(server.pid), seconds)
                server_cpu = cpu_seconds(server.pid)["server"] - before["server"]
            finally:
                await close_all(clients)
            log = server.log_path.read_text(errors="replace")
        print(
            f"database: PostgreSQL; server: paycore serve --workers {arguments.workers}, "
            f"pool {arguments.pool_size}+{arguments.max_overflow} per process"
        )
        print(
            f"setup: {count} orders placed (cart → checkout) in {setup_seconds:.1f} s over "
            f"{arguments.setup_clients} clients, not measured"
        )
        deliveries = count * copies
        rate = deliveries / seconds
        values = sorted(latencies)
        p99 = percentile(values, 99)
        unavailable = sum(n for outcome, n in outcomes.items() if outcome.startswith("503"))
        others = sum(n for outcome, n in outcomes.items() if not outcome.startswith(("200 ", "503")))
        print(
            f"storm: {count} payment.succeeded events x {copies} copies = {deliveries} deliveries, "
            f"{arguments.in_flight} in flight"
        )
        print(f"  {rate:7.0f} deliveries/s   {latency_summary(latencies)}")
        print(f"  answers: {', '.join(f'{outcome} x{n}' for outcome, n in sorted(outcomes.items()))}")
        print(f"  503 (pool exhausted or store failed): {unavailable}; other errors: {others}")
        print(f"  server CPU per delivery {server_cpu / deliveries * 1000:.2f} ms; {cpu}")
        pool_timeouts = log.count("QueuePool limit")
        logged_503 = sum(1 for line in log.splitlines() if '"status": 503' in line or "status=503" in line)
        print(f"  server log: {pool_timeouts} pool timeouts, {logged_503} requests answered 503")
        print(
            f"target >= {TARGET_RATE:.0f} deliveries/s: {'met' if rate >= TARGET_RATE else 'MISSED'} ({rate:.0f}); "
            f"p99 < {TARGET_P99_S:.0f} s: {'met' if p99 < TARGET_P99_S else 'MISSED'} ({p99 * 1000:.0f} ms); "
            f"no 503: {'met' if unavailable == 0 else 'MISSED'}"
        )
        print("exactly once, from the database:")
        wrong = await exactly_once_counts(dsn, shop, orders, [event_id for event_id, _ in events])
    unanswered = deliveries - sum(n for outcome, n in outcomes.items() if outcome.startswith("200 "))
    if wrong:
        print("FAILED: " + "; ".join(wrong))
    if unanswered:
        print(f"FAILED: {unanswered} deliveries were not answered 200")
    return 1 if wrong or unanswered else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="paid orders (default 2000)")
    parser.add_argument("--copies", type=int, default=25, help="deliveries of each event (default 25)")
    parser.add_argument("--in-flight", type=int, default=200, help="concurrent deliveries (default 200)")
    parser.add_argument(
        "--setup-clients", type=int, default=32, help="clients placing the orders (default 32)"
    )
    parser.add_argument("--workers", type=int, default=2, help="paycore serve --workers (default 2)")
    parser.add_argument("--pool-size", type=int, default=10, help="PAYCORE_DATABASE_POOL_SIZE (default 10)")
    parser.add_argument(
        "--max-overflow", type=int, default=10, help="PAYCORE_DATABASE_MAX_OVERFLOW (default 10)"
    )
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
