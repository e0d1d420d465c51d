"""Webhook ingest: distinct, correctly signed sandbox events over 64 connections to a running server.

Starts `paycore serve` on a throwaway PostgreSQL database and sends `payment.succeeded` events that
match no order (each is verified, committed to the inbox, then applied and stored as `unmatched`
with an ops alert). The reference, measured in the same run, is a raw asyncpg loop doing the same
inserts into payment_events (same columns, ON CONFLICT DO NOTHING, one transaction each) with as
many workers, over a pool as big as the server's. Target: paycore/raw >= 0.5. For context it also
prints GET /health over the same connections (the HTTP stack alone) and the CPU each side used.
Each connection is its own httpx.AsyncClient (`--shared-client`: one client pooling all of them,
which costs the load generator ~3x the CPU). Exits 1 unless every event was stored exactly once.

    .venv/bin/python bench/webhook_ingest.py [--events 3000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections import Counter
from datetime import UTC, datetime

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

from paycore.ids import new_id
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.signing import SIGNATURE_HEADER, sign

TARGET_RATIO = 0.5
RAW_INSERT = """
INSERT INTO payment_events
    (id, tenant_id, livemode, provider, provider_event_id, type, payload, received_at, attempts, correlation_id)
VALUES ($1, $2, false, 'sandbox', $3, 'payment.succeeded', $4::jsonb, $5, 0, $6)
ON CONFLICT (tenant_id, provider, provider_event_id) DO NOTHING
"""


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


async def send_webhooks(
    clients: list[httpx.AsyncClient], path: str, secret: bytes, events: list[tuple[str, bytes]], senders: int
) -> tuple[float, list[float], Counter[str]]:
    """Send every event once from `senders` concurrent tasks; (seconds, latencies, outcomes)."""
    pending = iter(events)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def sender(client: httpx.AsyncClient) -> None:
        for _, body in pending:  # one iterator shared by all senders: each event is sent once
            started = time.perf_counter()
            for _ in range(3):  # like a provider: resend on a broken connection (the id dedupes it)
                signature = sign(secret, int(time.time()), body)
                headers = {"content-type": "application/json", SIGNATURE_HEADER: signature}
                try:
                    response = await client.post(path, content=body, headers=headers)
                except httpx.TransportError as exc:
                    outcomes[f"retried after {type(exc).__name__}"] += 1
                    continue
                answer = response.json() if response.status_code == 200 else {}
                result = "duplicate" if answer.get("duplicate") else answer.get("result", "error")
                outcomes[f"{response.status_code} {result}"] += 1
                break
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(sender(clients[number % len(clients)]) for number in range(senders)))
    return time.perf_counter() - started, latencies, outcomes


async def health_rate(clients: list[httpx.AsyncClient], requests: int, senders: int) -> float:
    """GET /health over the same connections: what the HTTP stack alone can do on this machine."""
    pending = iter(range(requests))

    async def sender(client: httpx.AsyncClient) -> None:
        for _ in pending:
            assert (await client.get("/health")).status_code == 200

    started = time.perf_counter()
    await asyncio.gather(*(sender(clients[number % len(clients)]) for number in range(senders)))
    return requests / (time.perf_counter() - started)


async def raw_inserts(
    pool: asyncpg.Pool, tenant_id: str, events: list[tuple[str, bytes]], workers: int
) -> tuple[float, int]:
    """The same inbox inserts straight through asyncpg; (seconds, rows inserted)."""
    pending = iter(events)
    inserted = 0

    async def worker() -> None:
        nonlocal inserted
        for event_id, body in pending:
            async with pool.acquire() as connection, connection.transaction():
                status = await connection.execute(
                    RAW_INSERT,
                    new_id("evt"),
                    tenant_id,
                    event_id,
                    body.decode(),
                    datetime.now(UTC),
                    new_id("req"),
                )
            inserted += status == "INSERT 0 1"

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started, inserted


async def main(arguments: argparse.Namespace) -> int:
    concurrency, count = arguments.concurrency, arguments.events
    server_pool = arguments.workers * (arguments.pool_size + arguments.max_overflow)
    raw_pool_size = min(concurrency, server_pool)  # no more than the workers can use at once
    run = secrets.token_hex(3)
    async with throwaway_postgres() as database_url:
        env = paycore_env(database_url, pool_size=arguments.pool_size, max_overflow=arguments.max_overflow)
        await paycore_cli(env, "db", "migrate")
        tenant = json.loads(
            await paycore_cli(env, "tenants", "create", "--slug", f"bench-{run}", "--name", "Bench", "--json")
        )
        secret = webhook_secret(paycore_settings(database_url), tenant["id"])

        pool = await asyncpg.create_pool(
            asyncpg_dsn(database_url), min_size=raw_pool_size, max_size=raw_pool_size
        )
        try:
            await raw_inserts(
                pool, tenant["id"], unmatched_events(f"rawwarm_{run}", arguments.warmup), concurrency
            )
            raw_seconds, raw_inserted = await raw_inserts(
                pool, tenant["id"], unmatched_events(f"raw_{run}", count), concurrency
            )
        finally:
            await pool.close()

        async with paycore_server(env, workers=arguments.workers) as server:
            clients = http_clients(server.base_url, concurrency, shared=arguments.shared_client)
            try:
                path = f"/webhooks/sandbox/{tenant['slug']}"
                warmup = unmatched_events(f"warm_{run}", arguments.warmup)
                await send_webhooks(clients, path, secret, warmup, concurrency)
                before = cpu_seconds(server.pid)
                events = unmatched_events(f"bench_{run}", count)
                seconds, latencies, outcomes = await send_webhooks(clients, path, secret, events, concurrency)
                cpu = cpu_line(before, cpu_seconds(server.pid), seconds)
                ceiling = await health_rate(clients, count, concurrency)
            finally:
                await close_all(clients)

        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            stored, distinct, unmatched = await connection.fetchrow(
                "SELECT count(*), count(DISTINCT provider_event_id), count(*) FILTER (WHERE result = 'unmatched')"
                " FROM payment_events WHERE tenant_id = $1 AND provider_event_id LIKE $2",
                tenant["id"],
                f"sbevt_bench_{run}_%",
            )
        finally:
            await connection.close()

    paycore_rate, raw_rate = count / seconds, count / raw_seconds
    ratio = paycore_rate / raw_rate
    pool = f"{arguments.pool_size}+{arguments.max_overflow}"
    print(
        f"database: PostgreSQL; server: paycore serve --workers {arguments.workers}, pool {pool} per process"
    )
    print(
        f"{count} distinct signed payment.succeeded events matching no order over {concurrency} connections"
    )
    print(
        f"(after {arguments.warmup} warm-up events); the raw loop uses {concurrency} workers, pool {raw_pool_size}"
    )
    print(f"raw asyncpg insert (reference)    {raw_rate:7.0f} events/s   {raw_inserted} rows inserted")
    print(f"paycore POST /webhooks/sandbox/…  {paycore_rate:7.0f} events/s   {latency_summary(latencies)}")
    print(
        f"GET /health, same connections     {ceiling:7.0f} req/s      the HTTP stack alone = {ceiling / raw_rate:.2f} of raw"
    )
    print(f"  responses: {', '.join(f'{outcome} x{n}' for outcome, n in sorted(outcomes.items()))}")
    print(f"  {cpu}")
    print(
        f"stored by the server: {stored} rows for {count} events sent ({distinct} distinct, {unmatched} unmatched)"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(f"ratio paycore/raw = {ratio:.3f}   target >= {TARGET_RATIO}: {verdict}")
    answered = sum(n for outcome, n in outcomes.items() if outcome.startswith("200 "))
    exactly_once = stored == distinct == unmatched == answered == count
    if not exactly_once:
        print("FAILED: not every event was stored and applied exactly once")
    return 0 if exactly_once and raw_inserted == count else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
