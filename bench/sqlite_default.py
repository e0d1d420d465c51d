"""The embedded default: 64 clients doing cart → checkout → sandbox webhook on SQLite.

Starts `paycore serve` with PAYCORE_DATABASE_URL a temporary SQLite file (the default database
kind), opens a shop, then runs N closed-loop clients (default 64) that each repeat: POST /v1/carts,
POST /v1/checkout, then the sandbox's signed `payment.succeeded` for that order — for a fixed time
after a warm-up. Prints paid orders/s, checkout p50/p99, `database is locked` and 5xx answers
(and the same words in the server log). The reference, measured in the same run on the same file
while the server is idle, is a raw `sqlite3` loop in one process writing the same rows in the
same three transactions per order (bench/_raw_money_path.py). Target (issue 13): paycore/raw >=
0.25, no `database is locked`, no 5xx. Exits 1 on any 5xx, lock error or order left unpaid.

    .venv/bin/python bench/sqlite_default.py [--clients 64] [--duration 30] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _raw_money_path import CART, CHECKOUT, PAID, for_sqlite, now_for, raw_order
from _support import (
    close_all,
    cpu_seconds,
    http_clients,
    latency_summary,
    paycore_cli,
    paycore_env,
    paycore_server,
    paycore_settings,
    percentile,
    run_main,
)
from _webhooks import Shop, open_shop, outcome_of, paid_event, place_order, placed_order, signed_headers

from paycore.sandbox.credentials import webhook_secret

TARGET_RATIO = 0.25
LOCKED = "database is locked"


def raw_sqlite_loop(path: Path, shop: Shop, orders: int) -> float:
    """Seconds for `orders` paid orders written straight through sqlite3, with paycore's pragmas:
    cart, checkout and payment as three BEGIN IMMEDIATE … COMMIT transactions each."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=5000", "synchronous=NORMAL"):
            connection.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for number in range(orders):
            order = raw_order(shop.tenant_id, shop.product_id, number, asyncpg=False)
            for transaction in (CART, CHECKOUT, PAID):
                values = order.at(now_for(asyncpg=False))
                connection.execute("BEGIN IMMEDIATE")
                for statement in transaction:
                    connection.execute(statement, for_sqlite(statement, values))
                connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()


@dataclass
class Run:
    seconds: float
    paid: int = 0
    iterations: list[float] = field(default_factory=list)
    checkouts: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    locked: int = 0
    server_errors: int = 0


def sandbox_payment_id(reader: sqlite3.Connection, attempt_id: str) -> str:
    row = reader.execute(
        "SELECT id FROM sandbox_payments WHERE merchant_reference = ?", (attempt_id,)
    ).fetchone()
    assert row is not None, f"no sandbox payment for {attempt_id}"
    return str(row[0])


async def closed_loop(
    clients: list[httpx.AsyncClient],
    shop: Shop,
    secret: bytes,
    reader: sqlite3.Connection,
    *,
    warmup: float,
    duration: float,
) -> Run:
    begin = time.perf_counter() + warmup
    end = begin + duration
    run = Run(duration)

    def note(response: httpx.Response) -> None:
        if LOCKED in response.text:
            run.locked += 1
        if response.status_code >= 500:
            run.server_errors += 1

    async def client_loop(client: httpx.AsyncClient, number: int) -> None:
        count = 0
        while (started := time.perf_counter()) < end:
            count += 1
            item = {"product_id": shop.product_id, "quantity": 1}
            try:
                cart = await client.post("/v1/carts", json={"items": [item]}, headers=shop.publishable)
                note(cart)
                if cart.status_code != 201:
                    run.outcomes[f"cart {outcome_of(cart)}"] += 1
                    continue
                body = {"cart_id": cart.json()["id"], "customer": {"email": f"c{number}-{count}@example.com"}}
                checkout_started = time.perf_counter()
                checkout = await client.post("/v1/checkout", json=body, headers=shop.publishable)
                checkout_seconds = time.perf_counter() - checkout_started
                note(checkout)
                if checkout.status_code != 201:
                    run.outcomes[f"checkout {outcome_of(checkout)}"] += 1
                    continue
                order = placed_order(checkout.json())
                _, event = paid_event(order, sandbox_payment_id(reader, order.attempt_id))
                webhook = await client.post(
                    shop.webhook_path, content=event, headers=signed_headers(secret, event)
                )
                note(webhook)
            except httpx.TransportError as exc:
                run.outcomes[f"transport error {type(exc).__name__}"] += 1
                continue
            outcome = outcome_of(webhook)
            run.outcomes[f"webhook {outcome}"] += 1
            if begin <= (finished := time.perf_counter()) <= end:
                run.iterations.append(finished - started)
                run.checkouts.append(checkout_seconds)
                run.paid += outcome == "200 applied"

    await asyncio.gather(*(client_loop(client, number) for number, client in enumerate(clients)))
    return run


async def main(arguments: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="paycore-sqlite-bench-") as directory:
        path = Path(directory) / "paycore.db"
        url = f"sqlite+aiosqlite:///{path}"
        env = paycore_env(url, pool_size=5, max_overflow=10)
        await paycore_cli(env, "db", "migrate")
        async with paycore_server(env, workers=arguments.workers) as server:
            clients = http_clients(server.base_url, arguments.clients)
            reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            try:
                shop = await open_shop(env, clients[0], on_hand=10**9)
                secret = webhook_secret(paycore_settings(url), shop.tenant_id)
                await place_order(clients[0], shop, "warm@example.com")  # the server's first statements
                raw_seconds = await asyncio.to_thread(raw_sqlite_loop, path, shop, arguments.raw_orders)
                before, started = cpu_seconds(server.pid), time.perf_counter()
                run = await closed_loop(
                    clients, shop, secret, reader, warmup=arguments.warmup, duration=arguments.duration
                )
                wall = time.perf_counter() - started
                after = cpu_seconds(server.pid)
            finally:
                reader.close()
                await close_all(clients)
            log = server.log_path.read_text(errors="replace")

    raw_rate = arguments.raw_orders / raw_seconds
    rate = run.paid / run.seconds
    ratio = rate / raw_rate
    log_locked = log.count(LOCKED)
    log_5xx = sum(1 for line in log.splitlines() if '"status": 5' in line or "status=5" in line)
    checkouts = sorted(run.checkouts)
    p50, p99 = (percentile(checkouts, q) * 1000 for q in (50, 99))
    print(f"database: SQLite (temporary file); server: paycore serve --workers {arguments.workers}")
    print(
        f"{arguments.clients} clients, closed loop: cart → checkout → sandbox webhook; "
        f"{arguments.warmup:.0f} s warm-up, {arguments.duration:.0f} s measured"
    )
    print(
        f"raw sqlite3, one process (reference)  {raw_rate:7.1f} paid orders/s ({arguments.raw_orders} orders, 3 transactions each)"
    )
    print(f"paycore                               {rate:7.1f} paid orders/s")
    print(f"  iteration                {latency_summary(run.iterations)}")
    print(f"  POST /v1/checkout alone  {latency_summary(run.checkouts)}")
    print(f"  checkout p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(f"  answers: {', '.join(f'{outcome} x{n}' for outcome, n in sorted(run.outcomes.items()))}")
    print(
        f"  '{LOCKED}': {run.locked} in answers, {log_locked} in the server log; "
        f"5xx: {run.server_errors} answered, {log_5xx} in the server log"
    )
    # Over the whole loop, warm-up included: every order that loop paid (PostgreSQL's CPU, which
    # cpu_line also reports, means nothing here).
    server_cpu, client_cpu = (after[name] - before[name] for name in ("server", "client"))
    paid_in_loop = run.outcomes["webhook 200 applied"]
    per_order = server_cpu / paid_in_loop * 1000 if paid_in_loop else float("nan")
    print(
        f"  server CPU per paid order {per_order:.1f} ms; CPU over {wall:.1f} s wall: server {server_cpu:.1f} s"
        f" ({server_cpu / wall:.2f} cores busy), this process {client_cpu:.1f} s"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(f"ratio paycore/raw = {ratio:.3f}   target >= {TARGET_RATIO}: {verdict}")
    unpaid = sum(n for outcome, n in run.outcomes.items() if not outcome.endswith("200 applied"))
    failed = run.locked or log_locked or run.server_errors or log_5xx or unpaid or not run.paid
    if failed:
        print(f"FAILED: {unpaid} iterations did not end in a paid order, or locks/5xx were seen")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first (default 5)")
    parser.add_argument("--raw-orders", type=int, default=2000, help="orders in the raw loop (default 2000)")
    parser.add_argument("--workers", type=int, default=1, help="paycore serve --workers (default 1)")
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
