from __future__ import annotations

import httpx
import pytest

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.migrations import all_revisions, head_revision, upgrade_to_head
from tests.backends import BACKENDS
from tests.conftest import make_settings


async def get_ready_from_own_database(settings: Settings) -> httpx.Response:
    """/ready of an app that owns a database built from `settings` (not the test transaction)."""
    database = Database(create_engine(settings))
    app = create_app(settings, database=database)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/ready")
    finally:
        await database.dispose()


class TestHealth:
    async def test_health_needs_no_database(self) -> None:
        # A database that cannot exist: /health must not touch it.
        settings = make_settings(database_url="sqlite+aiosqlite:////nonexistent/dir/x.db")
        app = create_app(settings, database=Database(create_engine(settings)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


class TestReadyAtHead:
    async def test_ready_when_database_answers_and_schema_is_at_head(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ready")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"]["migrations"] == {"ok": True, "detail": f"at head {head_revision()}"}


@pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)
class TestReadyOnAFreshDatabase:
    async def test_pending_migration_makes_it_503_until_migrated(self, fresh_database_url: str) -> None:
        settings = make_settings(database_url=fresh_database_url)
        database = Database(create_engine(settings))
        app = create_app(settings, database=database)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                pending = await client.get("/ready")
                await upgrade_to_head(database.engine)
                ready = await client.get("/ready")
        finally:
            await database.dispose()
        assert pending.status_code == 503
        error = pending.json()["error"]
        assert error["type"] == "api_error" and error["code"] == "not_ready"
        history = all_revisions()
        assert f"{len(history)} pending ({', '.join(history)})" in error["message"]
        assert pending.json()["checks"]["migrations"]["ok"] is False
        assert ready.status_code == 200


class TestReadyWhenDependenciesFail:
    async def test_unreachable_database_is_503_without_details(self) -> None:
        settings = make_settings(
            database_url="postgresql+asyncpg://nobody:hunter2@127.0.0.1:1/none",
            database_connect_timeout_seconds=1,
        )
        database = Database(create_engine(settings))
        app = create_app(settings, database=database)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                response = await client.get("/ready")
        finally:
            await database.dispose()
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == {"ok": False, "detail": "unreachable"}
        assert "hunter2" not in response.text and "127.0.0.1" not in response.text

    async def test_unreachable_redis_is_503(self, db: Database) -> None:
        settings = make_settings(redis_url="redis://127.0.0.1:1/0")
        app = create_app(settings, database=db)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"]["ok"] is False
        assert response.json()["checks"]["database"]["ok"] is True

    async def test_shutting_down_is_503(self, db: Database, client: httpx.AsyncClient) -> None:
        app = client._transport.app  # type: ignore[attr-defined]
        app.state.shutting_down = True
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"] == {"process": {"ok": False, "detail": "shutting down"}}


class TestReadyWithRedis:
    async def test_answering_redis_is_part_of_ready(self, db: Database, redis_url: str) -> None:
        app = create_app(make_settings(redis_url=redis_url), database=db)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                response = await client.get("/ready")
        assert response.status_code == 200
        assert response.json()["checks"]["redis"] == {"ok": True, "detail": "answers"}


class TestProductionOnSqlite:
    async def test_ready_says_live_payments_are_unavailable(self, tmp_path: object) -> None:
        settings = make_settings(env="production", database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db")
        database = Database(create_engine(settings))
        try:
            await upgrade_to_head(database.engine)
            response = await get_ready_from_own_database(settings)
        finally:
            await database.dispose()
        assert response.status_code == 200  # test mode still works: the process takes traffic
        (warning,) = response.json()["warnings"]
        assert "Live-mode payments need PostgreSQL" in warning

    async def test_development_on_sqlite_has_no_warning(self, client: httpx.AsyncClient) -> None:
        assert "warnings" not in (await client.get("/ready")).json()
