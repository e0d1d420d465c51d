"""Checkout under load: closed-loop clients each doing cart → checkout against a running server.

Starts `paycore serve` (PostgreSQL by default: a throwaway database, dropped at the end), creates a
tenant, keys and a product with plenty of stock, then runs N clients that each repeat POST /v1/carts
(one item) → POST /v1/checkout for a fixed time after a warm-up. The reference, measured in the same
run and at the same concurrency, is GET /health: the bare HTTP stack. Runs at 200 clients, then at
lower concurrencies. Target: POST /v1/checkout p99 < 100 ms on this 2-core machine. Exits 1 when
more than 1% of iterations failed (failures are counted by kind and printed).

    .venv/bin/python bench/checkout.py [--clients 200] [--low-clients 8,2] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _support import (
    close_all,
    cpu_line,
    cpu_seconds,
    http_clients,
    latency_summary,
    paycore_cli,
    paycore_env,
    paycore_server,
    percentile,
    run_main,
    throwaway_postgres,
)

TARGET_P99_MS = 100.0


@dataclass
class Run:
    """What a closed loop measured: latencies of the iterations inside the measured window."""

    seconds: float
    iterations: list[float] = field(default_factory=list)
    checkouts: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.iterations) / self.seconds


# One iteration: returns the checkout call's own latency (None when the iteration has none).
Iteration = Callable[[httpx.AsyncClient, int, int], Awaitable[float | None]]


async def closed_loop(
    clients: list[httpx.AsyncClient], iteration: Iteration, *, warmup: float, duration: float
) -> Run:
    """Each client repeats `iteration` back to back; the window counts what completes inside it."""
    begin = time.perf_counter() + warmup
    end = begin + duration
    run = Run(duration)

    async def client_loop(client: httpx.AsyncClient, number: int) -> None:
        count = 0
        while (started := time.perf_counter()) < end:
            count += 1
            try:
                checkout = await iteration(client, number, count)
            except (httpx.TransportError, AssertionError) as exc:
                run.errors[str(exc) or type(exc).__name__] += 1
                continue
            if begin <= (finished := time.perf_counter()) <= end:  # completed inside the window
                run.iterations.append(finished - started)
                if checkout is not None:
                    run.checkouts.append(checkout)

    await asyncio.gather(*(client_loop(client, number) for number, client in enumerate(clients)))
    return run


def failure(response: httpx.Response) -> str:
    """`METHOD /path status error_code`: one line per kind of failure, not per request."""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = response.text[:80]
    return f"{response.request.method} {response.request.url.path} {response.status_code} {code}"


@dataclass(frozen=True)
class Shop:
    publishable: dict[str, str]
    products: list[str]

    async def cart_then_checkout(self, client: httpx.AsyncClient, number: int, count: int) -> float:
        product = self.products[number % len(self.products)]
        item = {"product_id": product, "quantity": 1}
        cart = await client.post("/v1/carts", json={"items": [item]}, headers=self.publishable)
        assert cart.status_code == 201, failure(cart)
        body = {"cart_id": cart.json()["id"], "customer": {"email": f"c{number}-{count}@example.com"}}
        started = time.perf_counter()
        order = await client.post("/v1/checkout", json=body, headers=self.publishable)
        elapsed = time.perf_counter() - started
        assert order.status_code == 201, failure(order)
        return elapsed


async def health(client: httpx.AsyncClient, number: int, count: int) -> None:  # noqa: ARG001
    response = await client.get("/health")
    assert response.status_code == 200, failure(response)


async def open_shop(env: dict[str, str], client: httpx.AsyncClient, products: int) -> Shop:
    slug = f"bench-{secrets.token_hex(3)}"
    await paycore_cli(env, "tenants", "create", "--slug", slug, "--name", "Bench", "--json")
    keys = {}
    for kind in ("secret", "publishable"):
        created = await paycore_cli(
            env, "keys", "create", "--tenant", slug, "--mode", "test", "--kind", kind, "--json"
        )
        keys[kind] = {"Authorization": f"Bearer {json.loads(created)['key']}"}
    ids = []
    for number in range(products):
        product = {"name": f"Bench widget {number}", "price": 2500, "currency": "EUR", "kind": "physical"}
        created_product = await client.post("/v1/products", json=product, headers=keys["secret"])
        assert created_product.status_code == 201, created_product.text
        ids.append(created_product.json()["id"])
        stock = {"on_hand": 10**9}
        stocked = await client.put(f"/v1/products/{ids[-1]}/inventory", json=stock, headers=keys["secret"])
        assert stocked.status_code == 200, stocked.text
    return Shop(keys["publishable"], ids)


@asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str]:
    """A throwaway PostgreSQL database, a temporary SQLite file (`sqlite`), or the URL given as is."""
    if url is None:
        async with throwaway_postgres() as created:
            yield created
    elif url == "sqlite":
        with tempfile.TemporaryDirectory(prefix="paycore-bench-") as directory:
            yield f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
    else:
        yield url


def report(concurrency: int, reference: Run, run: Run, cpu: str) -> None:
    print(f"-- {concurrency} concurrent clients, closed loop")
    print(
        f"   GET /health (reference)   {reference.rate:7.0f} req/s       {latency_summary(reference.iterations)}"
    )
    print(f"   cart → checkout           {run.rate:7.1f} checkouts/s {latency_summary(run.iterations)}")
    print(f"   POST /v1/checkout alone                        {latency_summary(run.checkouts)}")
    mean_ms = sum(run.iterations) / len(run.iterations) * 1000 if run.iterations else float("nan")
    little_ms = concurrency / run.rate * 1000 if run.rate else float("nan")
    print(
        f"   Little's law: {concurrency} clients / {run.rate:.1f} per s = {little_ms:.0f} ms ≈ mean iteration {mean_ms:.0f} ms"
    )
    health_p50 = percentile(sorted(reference.iterations), 50)
    checkout_p50, p99 = (percentile(sorted(run.checkouts), q) for q in (50, 99))
    print(f"   checkout p50 / health p50 = {checkout_p50 / health_p50:.1f}x")
    p99 *= 1000
    verdict = "met" if p99 < TARGET_P99_MS else "MISSED"
    print(f"   target: checkout p99 < {TARGET_P99_MS:.0f} ms: {verdict} ({p99:.1f} ms)")
    print(f"   {cpu}")
    for error, count in (reference.errors + run.errors).most_common(5):
        print(f"   error x{count}: {error}")


async def main(arguments: argparse.Namespace) -> int:
    levels = [arguments.clients, *(int(n) for n in arguments.low_clients.split(",") if int(n) > 0)]
    failed = False
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(database(arguments.database_url))
        env = paycore_env(url, pool_size=arguments.pool_size, max_overflow=arguments.max_overflow)
        await paycore_cli(env, "db", "migrate")
        server = await stack.enter_async_context(paycore_server(env, workers=arguments.workers))
        clients = http_clients(server.base_url, max(levels))
        stack.push_async_callback(close_all, clients)
        shop = await open_shop(env, clients[0], arguments.products)
        backend = (
            "SQLite"
            if url.startswith("sqlite")
            else f"PostgreSQL, pool {arguments.pool_size}+{arguments.max_overflow}"
        )
        print(f"database: {backend}; server: paycore serve --workers {arguments.workers}")
        print(f"{len(shop.products)} product(s) with 10^9 units on hand; the cart rotates over them")
        print(f"each run: {arguments.warmup:.0f} s warm-up, then {arguments.duration:.0f} s measured")
        for concurrency in levels:
            active = clients[:concurrency]
            reference = await closed_loop(active, health, warmup=1.0, duration=arguments.health_duration)
            before, started = cpu_seconds(server.pid), time.perf_counter()
            run = await closed_loop(
                active, shop.cart_then_checkout, warmup=arguments.warmup, duration=arguments.duration
            )
            cpu = cpu_line(before, cpu_seconds(server.pid), time.perf_counter() - started)
            report(concurrency, reference, run, cpu)
            errors = sum(run.errors.values()) + sum(reference.errors.values())
            failed = failed or not run.iterations or errors > 0.01 * len(run.iterations)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients (default 200)")
    parser.add_argument(
        "--low-clients",
        default="8,2",
        help="lower concurrencies to run next, comma-separated; 0 for none (default 8,2)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run (default 20)")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="unmeasured seconds before each run (default 3)"
    )
    parser.add_argument(
        "--health-duration", type=float, default=5.0, help="seconds of GET /health per level (default 5)"
    )
    parser.add_argument("--products", type=int, default=1, help="products the carts rotate over (default 1)")
    parser.add_argument(
        "--database-url", default=None, help="use this database (or `sqlite` for a temporary file)"
    )
    parser.add_argument("--workers", type=int, default=1, help="paycore serve --workers (default 1)")
    parser.add_argument("--pool-size", type=int, default=10, help="PAYCORE_DATABASE_POOL_SIZE (default 10)")
    parser.add_argument(
        "--max-overflow", type=int, default=10, help="PAYCORE_DATABASE_MAX_OVERFLOW (default 10)"
    )
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
