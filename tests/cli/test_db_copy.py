"""`paycore db copy`: a SQLite database filled by the money path moves to PostgreSQL whole — the
app run against the copy shows the same orders — and a copy stopped half-way, resumed, ends
identical. Refusals: a target at another migration, a target holding rows without --resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from paycore.app import create_app
from paycore.audit.service import Actor
from paycore.auth.models import KeyKind, KeyMode
from paycore.auth.service import create_api_key
from paycore.db import Database, create_engine
from paycore.migrations import upgrade_to_head
from paycore.ops.copy import CopyError, compare, copy_database
from paycore.tenancy.models import Tenant
from tests.cli.conftest import Cli
from tests.cli.test_db_backup import fill
from tests.conftest import drop_database_url, make_settings, new_database_url


async def migrated(backend: str, directory: Path) -> str:
    url = await new_database_url(backend, directory)
    database = Database(create_engine(make_settings(database_url=url)))
    try:
        await upgrade_to_head(database.engine)
    finally:
        await database.dispose()
    return url


async def orders_seen(url: str) -> list[tuple[str, str, int]]:
    """What the merchant API of an app on `url` lists, for every tenant's orders."""
    settings = make_settings(database_url=url)
    database = Database(create_engine(settings))
    try:
        async with database.session(write=True) as session:
            tenants = list(await session.scalars(select(Tenant).where(~Tenant.slug.like("verify-%"))))
            keys = [
                (
                    await create_api_key(
                        session, tenant=t, mode=KeyMode.TEST, kind=KeyKind.SECRET, actor=Actor("t")
                    )
                ).plaintext
                for t in tenants
            ]
        app = create_app(settings, database=database)
        seen: list[tuple[str, str, int]] = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=settings.public_url
        ) as client:
            for key in keys:
                response = await client.get("/v1/orders", headers={"Authorization": f"Bearer {key}"})
                assert response.status_code == 200, response.text
                seen += [(o["id"], o["status"], o["total"]) for o in response.json()["data"]]
        return sorted(seen)
    finally:
        await database.dispose()


@pytest.fixture
def sqlite_source(tmp_path: Path) -> str:
    url = asyncio.run(migrated("sqlite", tmp_path / "source"))
    asyncio.run(fill(url))
    asyncio.run(fill(url))  # two shops
    return url


@pytest.fixture
def postgres_target(tmp_path: Path) -> Any:
    url = asyncio.run(migrated("postgresql", tmp_path / "target"))
    yield url
    asyncio.run(drop_database_url(url))


def test_sqlite_to_postgresql_copies_every_row_and_the_app_sees_the_same_orders(
    sqlite_source: str, postgres_target: str, tmp_path: Path
) -> None:
    output = Cli(sqlite_source, tmp_path)("db", "copy", "--from", sqlite_source, "--to", postgres_target)
    assert "identical" in output and "DIFFERENT" not in output
    before = asyncio.run(orders_seen(sqlite_source))
    assert len(before) == 10  # two shops, five orders each, in every state
    assert asyncio.run(orders_seen(postgres_target)) == before
    # The copy is a working database: its sequences moved past the copied ids (new audit rows fit).
    assert "0 failed" in Cli(postgres_target, tmp_path)("db", "verify")


def test_a_copy_stopped_half_way_is_resumed_to_identical(
    sqlite_source: str, postgres_target: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url=sqlite_source)
    copied_tables: list[str] = []

    def crash_midway(table: str, copied: int, total: int) -> None:
        copied_tables.append(table)
        if table == "orders":
            raise KeyboardInterrupt  # as if killed during the orders table

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(
            copy_database(settings, sqlite_source, postgres_target, batch_size=1, progress=crash_midway)
        )
    partial = asyncio.run(compare(settings, sqlite_source, postgres_target))
    assert not all(check.identical for check in partial)

    with pytest.raises(CopyError, match="--resume"):
        asyncio.run(copy_database(settings, sqlite_source, postgres_target))
    checks = asyncio.run(copy_database(settings, sqlite_source, postgres_target, resume=True, batch_size=2))
    assert all(check.identical for check in checks)
    assert sum(check.source_rows for check in checks) > 50


def test_a_target_at_another_migration_is_refused(sqlite_source: str, tmp_path: Path) -> None:
    empty = asyncio.run(new_database_url("sqlite", tmp_path / "empty"))
    output = Cli(sqlite_source, tmp_path)("db", "copy", "--from", sqlite_source, "--to", empty, expect=1)
    assert "paycore db migrate" in output


def test_a_difference_after_the_copy_is_named_and_exits_1(
    sqlite_source: str, postgres_target: str, tmp_path: Path
) -> None:
    cli = Cli(sqlite_source, tmp_path)
    cli("db", "copy", "--from", sqlite_source, "--to", postgres_target)

    async def tamper() -> None:
        database = Database(create_engine(make_settings(database_url=postgres_target)))
        try:
            async with database.engine.begin() as connection:
                await connection.execute(
                    text("UPDATE orders SET total = total + 1 WHERE id = (SELECT min(id) FROM orders)")
                )
        finally:
            await database.dispose()

    asyncio.run(tamper())
    output = cli(
        "db",
        "copy",
        "--from",
        sqlite_source,
        "--to",
        postgres_target,
        "--resume",
        expect=1,
        env={"COLUMNS": "200"},
    )
    assert "DIFFERENT" in output and "differs from the source in: orders" in output
