"""Real databases for tests: a SQLite file, and throwaway PostgreSQL databases on the local server.

PostgreSQL is found at PAYCORE_TEST_POSTGRES_URL (default: the local server, trust auth). Without
it the PostgreSQL half of the suite is skipped with one loud line, unless
PAYCORE_TEST_REQUIRE_POSTGRES=1 (CI), which turns its absence into a failure.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_ADMIN_URL = os.environ.get(
    "PAYCORE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("PAYCORE_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ("sqlite", "postgresql")


@dataclass
class PostgresProbe:
    checked: bool = False
    available: bool = False
    reason: str = ""


_probe = PostgresProbe()


async def postgres_unavailable_reason() -> str | None:
    """None when the test server answers; otherwise why not (checked once per session)."""
    if not _probe.checked:
        _probe.checked = True
        engine = create_async_engine(POSTGRES_ADMIN_URL, connect_args={"timeout": 3})
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            _probe.available = True
        except Exception as exc:
            _probe.reason = f"{type(exc).__name__}: {exc}"
        finally:
            await engine.dispose()
    return None if _probe.available else (_probe.reason or "unreachable")


async def _admin_execute(statement: str) -> None:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


async def create_postgres_database() -> str:
    name = f"paycore_test_{os.getpid()}_{secrets.token_hex(4)}"
    await _admin_execute(f'CREATE DATABASE "{name}"')
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    await _admin_execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


REDIS_URL = os.environ.get("PAYCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def redis_unavailable_reason() -> str | None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
