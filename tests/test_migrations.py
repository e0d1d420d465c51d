from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.db import Database, create_engine
from paycore.migrations import head_revision, migration_status, upgrade_to_head
from paycore.ops.readiness import run_readiness_checks
from paycore.tables import metadata
from tests.backends import BACKENDS
from tests.conftest import make_settings

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


def _schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tenant_owned_unique_columns(connection: Connection) -> dict[str, list[list[str]]]:
    inspector = inspect(connection)
    found: dict[str, list[list[str]]] = {}
    for table in inspector.get_table_names():
        columns = {column["name"] for column in inspector.get_columns(table)}
        if "tenant_id" not in columns:
            continue
        uniques = [constraint["column_names"] for constraint in inspector.get_unique_constraints(table)]
        uniques += [index["column_names"] for index in inspector.get_indexes(table) if index.get("unique")]
        found[table] = uniques
    return found


class TestMigrate:
    async def test_migrating_twice_applies_once(self, fresh_database_url: str) -> None:
        engine: AsyncEngine = create_engine(make_settings(database_url=fresh_database_url))
        try:
            before = await migration_status(engine)
            assert before.current is None
            assert before.pending[-1] == head_revision()
            assert await upgrade_to_head(engine) == before.pending
            assert await upgrade_to_head(engine) == []
            after = await migration_status(engine)
            assert after.at_head and after.current == head_revision()
        finally:
            await engine.dispose()

    async def test_migrated_schema_matches_the_models(self, fresh_database_url: str) -> None:
        engine = create_engine(make_settings(database_url=fresh_database_url))
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                differences = await connection.run_sync(_schema_differences)
            assert differences == []
        finally:
            await engine.dispose()

    async def test_every_unique_index_on_a_tenant_table_starts_with_tenant_id(
        self, fresh_database_url: str
    ) -> None:
        engine = create_engine(make_settings(database_url=fresh_database_url))
        try:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                uniques = await connection.run_sync(_tenant_owned_unique_columns)
            assert "api_keys" in uniques and "users" in uniques
            for table, constraints in uniques.items():
                for columns in constraints:
                    assert columns[0] == "tenant_id", (
                        f"{table}: unique {columns} does not start with tenant_id"
                    )
        finally:
            await engine.dispose()


class TestDatabaseAheadOfTheCode:
    """A rolling deploy migrates first while old hosts still serve: their code must accept a
    database at a revision it does not know (our migrations expand before they contract)."""

    async def test_old_code_serves_on_a_newer_schema(self, fresh_database_url: str) -> None:
        engine = create_engine(make_settings(database_url=fresh_database_url))
        try:
            await upgrade_to_head(engine)
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE alembic_version SET version_num = '9999_from_the_future'")
                )
            status = await migration_status(engine)
            assert (status.ahead, status.compatible, status.at_head, status.pending) == (
                True,
                True,
                False,
                [],
            )
            assert await upgrade_to_head(engine) == []  # nothing of ours to apply, no crash
            checks = await run_readiness_checks(
                database=Database(engine), redis=None, shutting_down=False, timeout_seconds=5
            )
            assert all(check.ok for check in checks), checks
        finally:
            await engine.dispose()
