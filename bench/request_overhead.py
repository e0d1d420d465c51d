"""What every request pays around its own work: server CPU per request, by kind of request.

Starts `paycore serve` (a throwaway PostgreSQL database by default, or `--database-url sqlite`),
then runs a fixed number of requests of each kind from a few keep-alive connections and prints the
server's CPU per request from /proc (independent of how busy the machine is):

- GET /health: the bare HTTP stack and middleware, no database;
- GET /v1/products with a secret key: authentication, the tenant's standing, one read;
- POST /v1/carts with a JSON body and a publishable key: the body checks (size, depth, text)
  and idempotency middleware, authentication, one write.

    .venv/bin/python bench/request_overhead.py [--requests 2000] [--connections 8] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
from _support import (
    bench_database,
    close_all,
    cpu_seconds,
    http_clients,
    paycore_cli,
    paycore_env,
    paycore_server,
    run_main,
    test_mode_tenant,
)

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def measure(
    name: str, server_pid: int, clients: list[httpx.AsyncClient], request: Request, total: int
) -> None:
    """`total` requests spread over the clients (after a warm-up); CPU per request from /proc."""
    for client in clients:
        for _ in range(20):
            assert (await request(client)).status_code < 300
    remaining = total
    before, started = cpu_seconds(server_pid), time.perf_counter()

    async def loop(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await request(client)
            assert response.status_code < 300, response.text

    await asyncio.gather(*(loop(client) for client in clients))
    wall, after = time.perf_counter() - started, cpu_seconds(server_pid)
    server = (after["server"] - before["server"]) / total * 1000
    postgres = (after["postgres"] - before["postgres"]) / total * 1000
    print(
        f"{name:<34} server CPU {server:6.3f} ms/request   postgres {postgres:6.3f} ms   "
        f"{total / wall:7.0f} req/s (wall; machine shared)"
    )


async def main(arguments: argparse.Namespace) -> int:
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(bench_database(arguments.database_url))
        env = paycore_env(url, pool_size=10, max_overflow=0)
        await paycore_cli(env, "db", "migrate")
        _, keys = await test_mode_tenant(env)
        server = await stack.enter_async_context(paycore_server(env, workers=arguments.workers))
        clients = http_clients(server.base_url, arguments.connections)
        stack.push_async_callback(close_all, clients)
        product = {"name": "Bench widget", "price": 2500, "currency": "EUR", "kind": "digital"}
        made = await clients[0].post("/v1/products", json=product, headers=keys["secret"])
        assert made.status_code == 201, made.text
        cart = {"items": [{"product_id": made.json()["id"], "quantity": 1}]}

        def health(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return client.get("/health")

        def products(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return client.get("/v1/products", headers=keys["secret"])

        def new_cart(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return client.post("/v1/carts", json=cart, headers=keys["publishable"])

        print(f"paycore serve --workers {arguments.workers}, {arguments.connections} connections")
        for name, request in (
            ("GET /health", health),
            ("GET /v1/products (secret key)", products),
            ("POST /v1/carts (JSON, pk)", new_cart),
        ):
            await measure(name, server.pid, clients, request, arguments.requests)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--database-url", default=None, help="a URL, or `sqlite`; default: throwaway PostgreSQL"
    )
    run_main(lambda: main(parser.parse_args()))
