"""Checkout under load: paycore and its lean reference, cart → checkout, measured in the same run.

Starts `paycore serve --workers N` on a throwaway PostgreSQL database (tenant, keys, products with
plenty of stock) and, beside it, the lean reference (`bench/reference_checkout.py`: the same durable
work in plain FastAPI + SQLAlchemy Core, served by uvicorn with as many workers, on a database of its
own). Closed-loop clients each repeat POST /v1/carts (one item) → POST /v1/checkout (with an
Idempotency-Key, as a storefront sends it) for a fixed time after a warm-up, against the reference
and then paycore, first on one hot product (a course launch: everyone buys the same item), then on
many (`--products`, each client its own), at 100 clients and then the lower levels.

Prints for each: checkouts/s, latencies, server CPU per checkout (from /proc: the server's process
tree) and PostgreSQL's (all of it, so noisy on a shared machine), and the issue's ratios with their
targets: paycore's server CPU per checkout / the reference's ≤ 1.5, and paycore's capacity / the
reference's ≥ 0.7 at 100 clients with `--workers 2`. A missed target prints MISSED; the exit code
is 1 only when more than 1% of iterations failed (failures are counted by kind and printed).

    .venv/bin/python bench/checkout.py [--clients 100] [--low-clients 8,2] [--products 100]
        [--workers 2] [--duration 20] [--only paycore|reference]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import httpx
import reference_checkout
from _support import (
    ADMIN_DSN,
    Server,
    bench_database,
    close_all,
    cpu_seconds,
    http_clients,
    latency_summary,
    paycore_cli,
    paycore_env,
    paycore_server,
    postgres_cpu_seconds,
    run_main,
    test_mode_tenant,
    throwaway_postgres,
    uvicorn_server,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from paycore.secrets_box import new_key_line

TARGET_CPU_RATIO = 1.5  # paycore's server CPU per checkout / the reference's, at most
TARGET_CAPACITY_RATIO = 0.7  # paycore's checkouts/s / the reference's, at least (100 clients, 2 workers)
CAPACITY_TARGET_AT = (100, 2)  # (clients, workers) the capacity target is stated for


@dataclass
class Run:
    """What a closed loop measured: latencies of the iterations inside the measured window, and
    every iteration completed (warm-up included: the CPU is measured over the whole run)."""

    seconds: float
    iterations: list[float] = field(default_factory=list)
    checkouts: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    completed: int = 0

    @property
    def rate(self) -> float:
        return len(self.iterations) / self.seconds


# One iteration: returns the checkout call's own latency (None when the iteration has none).
Iteration = Callable[[httpx.AsyncClient, int, int], Awaitable[float | None]]


async def closed_loop(
    clients: list[httpx.AsyncClient], iteration: Iteration, *, warmup: float, duration: float
) -> Run:
    """Each client repeats `iteration` back to back; the window counts what completes inside it.

    The window opens `warmup` seconds after the start, and not before every client has finished
    one iteration: a system slower than the warm-up is measured once all its clients are queued,
    not while their first requests still are (which would count none, or too few)."""
    run = Run(duration)
    started_at = time.perf_counter()
    window: list[float] = []  # [begin, end], once every client is past its first iteration
    warmed = 0

    async def client_loop(client: httpx.AsyncClient, number: int) -> None:
        nonlocal warmed
        count = 0
        while not window or time.perf_counter() < window[1]:
            started = time.perf_counter()
            count += 1
            checkout, failed_with = None, None
            try:
                checkout = await iteration(client, number, count)
            except (httpx.TransportError, AssertionError) as exc:
                failed_with = str(exc) or type(exc).__name__
            finished = time.perf_counter()
            if count == 1:
                warmed += 1
                if warmed == len(clients):
                    begin = max(started_at + warmup, finished)
                    window[:] = [begin, begin + duration]
            if failed_with is not None:
                run.errors[failed_with] += 1
                continue
            run.completed += 1
            if window and window[0] <= finished <= window[1]:  # completed inside the window
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
    """A storefront's key and the products its carts rotate over (client `number` buys product
    `number` mod the count: one product is the hot case, as many as clients the spread one)."""

    publishable: dict[str, str]
    products: list[str]

    async def cart_then_checkout(self, client: httpx.AsyncClient, number: int, count: int) -> float:
        product = self.products[number % len(self.products)]
        item = {"product_id": product, "quantity": 1}
        cart = await client.post("/v1/carts", json={"items": [item]}, headers=self.publishable)
        assert cart.status_code == 201, failure(cart)
        body = {"cart_id": cart.json()["id"], "customer": {"email": f"c{number}-{count}@example.com"}}
        # As a storefront sends it, so that a retried checkout cannot order twice.
        headers = self.publishable | {"Idempotency-Key": secrets.token_urlsafe(16)}
        started = time.perf_counter()
        order = await client.post("/v1/checkout", json=body, headers=headers)
        elapsed = time.perf_counter() - started
        assert order.status_code == 201, failure(order)
        return elapsed

    def only(self, first: int, count: int) -> Shop:
        return Shop(self.publishable, self.products[first : first + count])


@dataclass(frozen=True)
class System:
    """A server under test, its shop, and its PostgreSQL database's name (None on SQLite)."""

    name: str
    server: Server
    shop: Shop
    database: str | None


async def transactions(database: str | None) -> int | None:
    """Transactions committed or rolled back in `database` so far, by PostgreSQL's statistics.
    A backend reports them at most once a second (an idle one up to 10 s late), so a run's count
    misses some of its own and may include some of the run before: per checkout it is approximate
    (closer on longer runs) but independent of the machine's load."""
    if database is None:
        return None
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        query = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"
        count: int = await connection.fetchval(query, database)
    finally:
        await connection.close()
    return count


async def health(client: httpx.AsyncClient, number: int, count: int) -> None:  # noqa: ARG001
    response = await client.get("/health")
    assert response.status_code == 200, failure(response)


async def open_shop(env: dict[str, str], client: httpx.AsyncClient, products: int) -> Shop:
    _, keys = await test_mode_tenant(env)
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
async def paycore_system(
    url: str, *, workers: int, pool_size: int, max_overflow: int, products: int
) -> AsyncIterator[System]:
    """`paycore serve` on `url` (migrated), with a tenant, its keys and `products` stocked products."""
    env = paycore_env(url, pool_size=pool_size, max_overflow=max_overflow)
    # Production refuses an Idempotency-Key without a key to seal the saved answer with.
    env["PAYCORE_SECRETS_KEY"] = new_key_line("bench")
    await paycore_cli(env, "db", "migrate")
    async with paycore_server(env, workers=workers) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            shop = await open_shop(env, client, products)
        postgres = None if url.startswith("sqlite") else make_url(url).database
        yield System("paycore", server, shop, postgres)


@asynccontextmanager
async def reference_system(
    *, workers: int, pool_size: int, max_overflow: int, products: int
) -> AsyncIterator[System]:
    """The lean reference on a throwaway database of its own, with as many workers and as big a pool."""
    async with throwaway_postgres() as url:
        engine = create_async_engine(url)
        try:
            await reference_checkout.create_schema(engine)
            key, ids = await reference_checkout.open_shop(engine, products)
        finally:
            await engine.dispose()
        env = paycore_env(url, pool_size=pool_size, max_overflow=max_overflow) | {
            reference_checkout.DATABASE_URL_ENV: url,
            reference_checkout.POOL_SIZE_ENV: str(pool_size),
            reference_checkout.MAX_OVERFLOW_ENV: str(max_overflow),
        }
        async with uvicorn_server("reference_checkout:create_app", env, workers=workers) as server:
            shop = Shop({"Authorization": f"Bearer {key}"}, ids)
            yield System("reference", server, shop, make_url(url).database)


@dataclass(frozen=True)
class Measured:
    """One system's closed loop at one level, with the CPU it cost."""

    system: str
    run: Run
    server_cpu: float
    postgres_cpu: float
    transactions: int | None

    @property
    def server_ms_per_checkout(self) -> float:
        return self.server_cpu / self.run.completed * 1000 if self.run.completed else float("nan")

    @property
    def postgres_ms_per_checkout(self) -> float:
        return self.postgres_cpu / self.run.completed * 1000 if self.run.completed else float("nan")

    @property
    def transactions_per_checkout(self) -> float:
        if self.transactions is None or not self.run.completed:
            return float("nan")
        return self.transactions / self.run.completed


async def measure(
    system: System, shop: Shop, clients: list[httpx.AsyncClient], *, warmup: float, duration: float
) -> Measured:
    committed = await transactions(system.database)
    server, postgres = cpu_seconds(system.server.pid)["server"], postgres_cpu_seconds()
    run = await closed_loop(clients, shop.cart_then_checkout, warmup=warmup, duration=duration)
    server = cpu_seconds(system.server.pid)["server"] - server
    postgres = postgres_cpu_seconds() - postgres
    await asyncio.sleep(1.1)  # every backend's statistics reported
    after = await transactions(system.database)
    counted = None if after is None or committed is None else after - committed
    return Measured(system.name, run, server, postgres, counted)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(title: str, health: Run | None, results: list[Measured], workers: int, concurrency: int) -> None:
    print(f"-- {title}, {concurrency} concurrent clients, closed loop, {workers} worker(s) each")
    if health is not None:
        print(
            f"   GET /health (paycore)  {health.rate:7.0f} req/s         {latency_summary(health.iterations)}"
        )
    for measured in results:
        run = measured.run
        print(
            f"   {measured.system:<10} cart → checkout {run.rate:7.1f} checkouts/s {latency_summary(run.iterations)}"
        )
        print(f"   {'':<10} POST /v1/checkout alone           {latency_summary(run.checkouts)}")
        print(
            f"   {'':<10} CPU per checkout: server {measured.server_ms_per_checkout:5.1f} ms, "
            f"PostgreSQL {measured.postgres_ms_per_checkout:5.1f} ms (all of it: others' load counts) "
            f"over {run.completed} checkouts; ≈ {measured.transactions_per_checkout:.1f} transactions each"
        )
        for error, count in run.errors.most_common(5):
            print(f"   {'':<10} error x{count}: {error}")
    by_name = {measured.system: measured for measured in results}
    if {"paycore", "reference"} <= by_name.keys():
        paycore, reference = by_name["paycore"], by_name["reference"]
        cpu_ratio = paycore.server_ms_per_checkout / reference.server_ms_per_checkout
        print(
            f"   paycore / reference server CPU per checkout = {cpu_ratio:.2f}x "
            f"(target ≤ {TARGET_CPU_RATIO}: {verdict(cpu_ratio <= TARGET_CPU_RATIO)})"
        )
        capacity = paycore.run.rate / reference.run.rate if reference.run.rate else float("nan")
        stated = (concurrency, workers) == CAPACITY_TARGET_AT
        target = (
            f"target ≥ {TARGET_CAPACITY_RATIO}: {verdict(capacity >= TARGET_CAPACITY_RATIO)}"
            if stated
            else f"the target ≥ {TARGET_CAPACITY_RATIO} is for 100 clients with --workers 2"
        )
        print(f"   paycore / reference capacity = {capacity:.2f}x ({target})")


def failed(run: Run) -> bool:
    return not run.iterations or sum(run.errors.values()) > 0.01 * (run.completed + sum(run.errors.values()))


async def main(arguments: argparse.Namespace) -> int:
    levels = [arguments.clients, *(int(n) for n in arguments.low_clients.split(",") if int(n) > 0)]
    names = ["reference", "paycore"] if arguments.only is None else [arguments.only]
    pools = {"pool_size": arguments.pool_size, "max_overflow": arguments.max_overflow}
    stock = 1 + (arguments.products if arguments.products > 1 else 0)  # the hot one, then the spread
    any_failed = False
    async with AsyncExitStack() as stack:
        systems: list[System] = []
        if "reference" in names:
            reference = reference_system(workers=arguments.workers, products=stock, **pools)
            systems.append(await stack.enter_async_context(reference))
        if "paycore" in names:
            url = await stack.enter_async_context(bench_database(arguments.database_url))
            paycore = paycore_system(url, workers=arguments.workers, products=stock, **pools)
            systems.append(await stack.enter_async_context(paycore))
        clients = {system.name: http_clients(system.server.base_url, max(levels)) for system in systems}
        for pool in clients.values():
            stack.push_async_callback(close_all, pool)
        print(
            f"server: {arguments.workers} worker(s) each; PostgreSQL pool "
            f"{arguments.pool_size}+{arguments.max_overflow} per worker; each run "
            f"{arguments.warmup:.0f} s warm-up, then {arguments.duration:.0f} s measured"
        )
        scenarios = [("one hot product", 0, 1)]
        if arguments.products > 1:
            scenarios.append((f"{arguments.products} products", 1, arguments.products))
        for title, first, count in scenarios:
            for concurrency in levels:
                ceiling = None
                if "paycore" in clients and arguments.health_duration > 0:
                    ceiling = await closed_loop(
                        clients["paycore"][:concurrency],
                        health,
                        warmup=0.5,
                        duration=arguments.health_duration,
                    )
                results = []
                for system in systems:
                    shop = system.shop.only(first, count)
                    active = clients[system.name][:concurrency]
                    results.append(
                        await measure(
                            system, shop, active, warmup=arguments.warmup, duration=arguments.duration
                        )
                    )
                report(title, ceiling, results, arguments.workers, concurrency)
                any_failed = any_failed or any(failed(measured.run) for measured in results)
    return 1 if any_failed else 0


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (default 100)")
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
        "--health-duration",
        type=float,
        default=3.0,
        help="seconds of GET /health on paycore per level, 0 for none (default 3)",
    )
    parser.add_argument(
        "--products",
        type=int,
        default=100,
        help="products of the spread run (default 100); 1 runs only the hot product",
    )
    parser.add_argument(
        "--only", choices=["paycore", "reference"], default=None, help="measure one system only"
    )
    parser.add_argument(
        "--database-url", default=None, help="paycore's database (or `sqlite` for a temporary file)"
    )
    parser.add_argument("--workers", type=int, default=2, help="server processes, each system (default 2)")
    parser.add_argument("--pool-size", type=int, default=10, help="database pool per process (default 10)")
    parser.add_argument(
        "--max-overflow", type=int, default=10, help="database pool overflow per process (default 10)"
    )
    return parser


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # each line as it is measured, also into a file
    arguments = parser().parse_args()
    run_main(lambda: main(arguments))
