"""Webhook ingest: distinct, correctly signed sandbox events over 64 connections to a running server.

Starts `paycore serve` on a throwaway PostgreSQL database and sends signed `payment.succeeded`
events: by default events that match no order (each is verified, stored in the inbox, applied and
stored as `unmatched` with an ops alert); with `--kind paid`, each event pays an order placed first
(cart → checkout, not measured). Then it sends every measured event again: duplicates, which must
change nothing. In the same run, over the same connections, GET /health: the HTTP stack alone.

The reference, measured in the same run on the same database, is a raw asyncpg loop writing the
rows one event's storage and application writes (bench/_raw_money_path.py: inbox row, attempt and
order updated, stock, audit and outbox rows, inbox row applied), one transaction per event, with
as many workers, over a pool as big as the server's.

Targets (issue 13): events/s >= 0.3 x GET /health's req/s; server CPU per fresh event printed
beside the raw loop's CPU for the same rows; a duplicate at least 2x cheaper (server CPU) than a
fresh event. Each connection is its own httpx.AsyncClient (`--shared-client`: one client pooling
all of them, which costs the load generator ~3x the CPU). Exits 1 unless every event was stored
and applied exactly once and every duplicate was answered as one.

    .venv/bin/python bench/webhook_ingest.py [--kind unmatched|paid] [--events 3000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass

import asyncpg
import httpx
from _raw_money_path import CART, CHECKOUT, PAID, UNMATCHED, for_asyncpg, now_for, raw_order
from _support import (
    asyncpg_dsn,
    close_all,
    cpu_seconds,
    http_clients,
    latency_summary,
    paycore_cli,
    paycore_env,
    paycore_server,
    paycore_settings,
    postgres_cpu_seconds,
    run_main,
    throwaway_postgres,
)
from _webhooks import Shop, open_shop, outcome_of, paid_event, place_orders, signed_headers

from paycore.sandbox.credentials import webhook_secret

TARGET_HEALTH_RATIO = 0.3
TARGET_DUPLICATE_CHEAPER = 2.0


def unmatched_events(prefix: str, count: int) -> list[tuple[str, bytes]]:
    """(event id, body) of `payment.succeeded` events for payments paycore never created."""
    events = []
    for number in range(count):
        event_id = f"sbevt_{prefix}_{number}"
        payment = {
            "id": f"sbpay_{prefix}_{number}",
            "merchant_reference": f"pay_unknown_{prefix}_{number}",
            "amount": 1000 + number % 5000,
            "currency": "EUR",
            "status": "succeeded",
        }
        body = {"id": event_id, "type": "payment.succeeded", "livemode": False, "data": {"payment": payment}}
        events.append((event_id, json.dumps(body).encode()))
    return events


async def paid_events(
    clients: list[httpx.AsyncClient], shop: Shop, dsn: str, count: int
) -> list[tuple[str, bytes]]:
    """(event id, body) of the sandbox's `payment.succeeded` for `count` orders placed now."""
    orders = await place_orders(clients, shop, count)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT merchant_reference, id FROM sandbox_payments WHERE tenant_id = $1", shop.tenant_id
        )
    finally:
        await connection.close()
    payments = {row["merchant_reference"]: row["id"] for row in rows}
    return [paid_event(order, payments[order.attempt_id]) for order in orders]


@dataclass
class Sent:
    seconds: float
    latencies: list[float]
    outcomes: Counter[str]
    server_cpu: float
    postgres_cpu: float

    def rate(self, count: int) -> float:
        return count / self.seconds

    def per_event_ms(self, count: int) -> tuple[float, float]:
        return self.server_cpu / count * 1000, self.postgres_cpu / count * 1000


async def send_webhooks(
    clients: list[httpx.AsyncClient],
    shop: Shop,
    secret: bytes,
    events: list[tuple[str, bytes]],
    senders: int,
    server_pid: int,
) -> Sent:
    """Send every event once from `senders` concurrent tasks, with the server's and PostgreSQL's CPU."""
    pending = iter(events)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def sender(client: httpx.AsyncClient) -> None:
        for _, body in pending:  # one iterator shared by all senders: each event is sent once
            started = time.perf_counter()
            for _ in range(3):  # like a provider: resend on a broken connection (the id dedupes it)
                try:
                    response = await client.post(
                        shop.webhook_path, content=body, headers=signed_headers(secret, body)
                    )
                except httpx.TransportError as exc:
                    outcomes[f"retried after {type(exc).__name__}"] += 1
                    continue
                outcomes[outcome_of(response)] += 1
                break
            latencies.append(time.perf_counter() - started)

    server_before, postgres_before = cpu_seconds(server_pid)["server"], postgres_cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(sender(clients[number % len(clients)]) for number in range(senders)))
    seconds = time.perf_counter() - started
    return Sent(
        seconds,
        latencies,
        outcomes,
        cpu_seconds(server_pid)["server"] - server_before,
        postgres_cpu_seconds() - postgres_before,
    )


async def health_rate(clients: list[httpx.AsyncClient], requests: int, senders: int) -> float:
    """GET /health over the same connections: what the HTTP stack alone can do on this machine."""
    pending = iter(range(requests))

    async def sender(client: httpx.AsyncClient) -> None:
        for _ in pending:
            assert (await client.get("/health")).status_code == 200

    started = time.perf_counter()
    await asyncio.gather(*(sender(clients[number % len(clients)]) for number in range(senders)))
    return requests / (time.perf_counter() - started)


@dataclass
class Raw:
    seconds: float
    own_cpu: float
    postgres_cpu: float


async def raw_reference(pool: asyncpg.Pool, shop: Shop, kind: str, count: int, workers: int) -> Raw:
    """The same rows through asyncpg, one transaction per event; paid events pay orders the loop
    first placed itself (unmeasured)."""
    orders = [raw_order(shop.tenant_id, shop.product_id, number, asyncpg=True) for number in range(count)]

    async def run(transactions: list[list[str]]) -> None:
        statements = [[for_asyncpg(sql) for sql in transaction] for transaction in transactions]
        pending = iter(orders)

        async def worker() -> None:
            for order in pending:
                values = order.at(now_for(asyncpg=True))
                async with pool.acquire() as connection:
                    for transaction in statements:
                        async with connection.transaction():
                            for statement in transaction:
                                await connection.execute(statement.sql, *statement.arguments(values))

        await asyncio.gather(*(worker() for _ in range(workers)))

    if kind == "paid":
        await run([CART, CHECKOUT])
    times, postgres = os.times(), postgres_cpu_seconds()
    started = time.perf_counter()
    await run([PAID if kind == "paid" else UNMATCHED])
    seconds = time.perf_counter() - started
    after = os.times()
    own = (after.user + after.system) - (times.user + times.system)
    return Raw(seconds, own, postgres_cpu_seconds() - postgres)


async def stored_counts(dsn: str, shop: Shop, event_ids: list[str]) -> tuple[int, int, Counter[str]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT provider_event_id, result FROM payment_events"
            " WHERE tenant_id = $1 AND provider_event_id = ANY($2)",
            shop.tenant_id,
            event_ids,
        )
    finally:
        await connection.close()
    return len(rows), len({row["provider_event_id"] for row in rows}), Counter(row["result"] for row in rows)


async def main(arguments: argparse.Namespace) -> int:
    concurrency, count, kind = arguments.concurrency, arguments.events, arguments.kind
    server_pool = arguments.workers * (arguments.pool_size + arguments.max_overflow)
    raw_pool_size = min(concurrency, server_pool)  # no more than the workers can use at once
    run = secrets.token_hex(3)
    expected = "applied" if kind == "paid" else "unmatched"
    async with throwaway_postgres() as database_url:
        dsn = asyncpg_dsn(database_url)
        env = paycore_env(database_url, pool_size=arguments.pool_size, max_overflow=arguments.max_overflow)
        await paycore_cli(env, "db", "migrate")
        async with paycore_server(env, workers=arguments.workers) as server:
            clients = http_clients(server.base_url, concurrency, shared=arguments.shared_client)
            try:
                shop = await open_shop(env, clients[0], on_hand=10**9)
                secret = webhook_secret(paycore_settings(database_url), shop.tenant_id)
                if kind == "paid":
                    setup = await paid_events(clients, shop, dsn, arguments.warmup + count)
                    warmup, events = setup[: arguments.warmup], setup[arguments.warmup :]
                else:
                    warmup = unmatched_events(f"warm_{run}", arguments.warmup)
                    events = unmatched_events(f"bench_{run}", count)

                # The reference first, while the server is idle, on the same database.
                pool = await asyncpg.create_pool(dsn, min_size=raw_pool_size, max_size=raw_pool_size)
                try:
                    await raw_reference(pool, shop, kind, arguments.warmup, concurrency)
                    raw = await raw_reference(pool, shop, kind, count, concurrency)
                finally:
                    await pool.close()

                await send_webhooks(clients, shop, secret, warmup, concurrency, server.pid)
                fresh = await send_webhooks(clients, shop, secret, events, concurrency, server.pid)
                duplicates = await send_webhooks(clients, shop, secret, events, concurrency, server.pid)
                ceiling = await health_rate(clients, count, concurrency)
            finally:
                await close_all(clients)
        stored, distinct, results = await stored_counts(dsn, shop, [event_id for event_id, _ in events])

    rate, raw_rate = fresh.rate(count), count / raw.seconds
    server_ms, postgres_ms = fresh.per_event_ms(count)
    duplicate_server_ms, duplicate_postgres_ms = duplicates.per_event_ms(count)
    raw_own_ms, raw_postgres_ms = raw.own_cpu / count * 1000, raw.postgres_cpu / count * 1000
    pool = f"{arguments.pool_size}+{arguments.max_overflow}"
    print(
        f"database: PostgreSQL; server: paycore serve --workers {arguments.workers}, pool {pool} per process"
    )
    what = "paying an order each" if kind == "paid" else "matching no order"
    print(f"{count} distinct signed payment.succeeded events {what}, over {concurrency} connections")
    print(
        f"(after {arguments.warmup} warm-up events); the raw loop uses {concurrency} workers, pool {raw_pool_size}"
    )
    print(
        f"raw asyncpg, same rows (reference) {raw_rate:7.0f} events/s   "
        f"CPU per event: its process {raw_own_ms:.2f} ms, postgres {raw_postgres_ms:.2f} ms"
    )
    print(f"paycore, fresh events              {rate:7.0f} events/s   {latency_summary(fresh.latencies)}")
    print(f"  CPU per event: server {server_ms:.2f} ms, postgres {postgres_ms:.2f} ms")
    print(
        f"paycore, the same events again     {duplicates.rate(count):7.0f} events/s   "
        f"{latency_summary(duplicates.latencies)}"
    )
    print(
        f"  CPU per duplicate: server {duplicate_server_ms:.2f} ms, postgres {duplicate_postgres_ms:.2f} ms"
    )
    print(f"GET /health, same connections      {ceiling:7.0f} req/s")
    print(f"  fresh answers: {', '.join(f'{o} x{n}' for o, n in sorted(fresh.outcomes.items()))}")
    print(f"  duplicate answers: {', '.join(f'{o} x{n}' for o, n in sorted(duplicates.outcomes.items()))}")
    print(f"stored: {stored} rows for {count} events ({distinct} distinct; results {dict(results)})")
    health_ratio = rate / ceiling
    cheaper = server_ms / duplicate_server_ms if duplicate_server_ms else float("inf")
    print(
        f"paycore/GET /health = {health_ratio:.3f}   target >= {TARGET_HEALTH_RATIO}: "
        f"{'met' if health_ratio >= TARGET_HEALTH_RATIO else 'MISSED'}"
    )
    print(
        f"server CPU per event, paycore/raw loop = {server_ms / raw_own_ms:.1f}x   "
        f"(paycore/raw events/s = {rate / raw_rate:.3f})"
    )
    print(
        f"a duplicate is {cheaper:.1f}x cheaper than a fresh event (server CPU)   "
        f"target >= {TARGET_DUPLICATE_CHEAPER:.0f}x: {'met' if cheaper >= TARGET_DUPLICATE_CHEAPER else 'MISSED'}"
    )
    exactly_once = stored == distinct == results[expected] == fresh.outcomes[f"200 {expected}"] == count
    duplicates_seen = duplicates.outcomes["200 duplicate"] == count
    if not (exactly_once and duplicates_seen):
        print(
            "FAILED: not every event was stored and applied exactly once, or a resend was not answered"
            " as a duplicate (see the answers above: a 503 is the server asking for a resend)"
        )
    return 0 if exactly_once and duplicates_seen else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind",
        choices=("unmatched", "paid"),
        default="unmatched",
        help="events matching no order, or each paying an order placed first (default unmatched)",
    )
    parser.add_argument("--events", type=int, default=3000, help="events in the measured run (default 3000)")
    parser.add_argument(
        "--warmup", type=int, default=300, help="events sent first and not measured (default 300)"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="connections and senders (default 64)")
    parser.add_argument("--workers", type=int, default=1, help="paycore serve --workers (default 1)")
    parser.add_argument("--pool-size", type=int, default=10, help="PAYCORE_DATABASE_POOL_SIZE (default 10)")
    parser.add_argument(
        "--max-overflow", type=int, default=10, help="PAYCORE_DATABASE_MAX_OVERFLOW (default 10)"
    )
    parser.add_argument(
        "--shared-client",
        action="store_true",
        help="one httpx.AsyncClient pooling every connection (default: one client per connection)",
    )
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
