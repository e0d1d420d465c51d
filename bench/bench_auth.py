"""What API-key authentication costs per request.

Serves `GET /v1/tenant` (key parse, prefix lookup, constant-time hash compare, tenant read) and,
as the reference measured in the same run, `GET /health` (the same app, middleware and metrics, no
database). Prints both rates and their ratio. In-process over ASGI, on a temporary SQLite database.

    .venv/bin/python bench/bench_auth.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

import httpx

from paycore.app import create_app
from paycore.audit.service import Actor
from paycore.auth.models import KeyKind, KeyMode
from paycore.auth.service import create_api_key
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.logging import configure_logging
from paycore.migrations import upgrade_to_head
from paycore.tenancy.service import create_tenant


async def rate(client: httpx.AsyncClient, path: str, headers: dict[str, str], requests: int) -> float:
    for _ in range(50):  # warm-up
        await client.get(path, headers=headers)
    started = time.perf_counter()
    for _ in range(requests):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
    return requests / (time.perf_counter() - started)


async def main(requests: int, database_url: str | None) -> None:
    configure_logging(level="WARNING", json=True)
    logging.getLogger("paycore").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as directory:
        url = database_url or f"sqlite+aiosqlite:///{Path(directory) / 'b.db'}"
        # The limiter runs (its cost is in the figure) but must not refuse one client's burst.
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            rate_limit_merchant_api="100000000/minute",
            rate_limit_storefront="100000000/minute",
        )
        database = Database(create_engine(settings))
        await upgrade_to_head(database.engine)
        async with database.session() as session:
            tenant = await create_tenant(
                session, slug=f"bench-{int(time.time())}", name="Bench", actor=Actor("bench")
            )
            key = await create_api_key(
                session, tenant=tenant, mode=KeyMode.TEST, kind=KeyKind.SECRET, actor=Actor("bench")
            )
        app = create_app(settings, database=database)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            reference = await rate(client, "/health", {}, requests)
            authenticated = await rate(
                client, "/v1/tenant", {"Authorization": f"Bearer {key.plaintext}"}, requests
            )
        await database.dispose()
    print(f"database: {database.dialect_name}")
    print(f"GET /health (reference)      {reference:9.0f} req/s")
    print(f"GET /v1/tenant (key + read)  {authenticated:9.0f} req/s")
    print(f"ratio authenticated/reference = {authenticated / reference:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.database_url))
