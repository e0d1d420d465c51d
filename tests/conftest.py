from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.migrations import upgrade_to_head
from tests.backends import (
    BACKENDS,
    REDIS_URL,
    REQUIRE_POSTGRES,
    create_postgres_database,
    drop_postgres_database,
    postgres_unavailable_reason,
    redis_unavailable_reason,
)

# Node ids of PostgreSQL tests skipped for want of a server, for the loud summary line.
_skipped_postgres_tests: list[str] = []


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: never read the developer's .env."""
    values: dict[str, Any] = {
        "env": "test",
        "log_level": "DEBUG",
        "checkout_token_secret": "test-only-9fK2mQ7xL4vB8nR1tY6wZ3cD5hJ0sP",
        "public_url": "http://paycore.test",
        # Tests make hundreds of calls from one address and key; tests/test_rate_limits.py turns
        # the limiter on for itself.
        "rate_limit_enabled": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's PAYCORE_* variables must not change what a test sees."""
    for name in list(os.environ):
        if name.startswith("PAYCORE_") and not name.startswith("PAYCORE_TEST_"):
            monkeypatch.delenv(name)


async def new_database_url(backend: str, directory: Path) -> str:
    """An empty database on `backend` (skipping or failing when PostgreSQL is missing)."""
    if backend == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{directory / 'paycore.db'}"
    reason = await postgres_unavailable_reason()
    if reason is not None:
        message = f"PostgreSQL unavailable ({reason})"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{message} and PAYCORE_TEST_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(message)
    return await create_postgres_database()


async def drop_database_url(url: str) -> None:
    if url.startswith("postgresql"):
        await drop_postgres_database(url)


@pytest.fixture(scope="session", params=BACKENDS)
async def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """One database per backend per session, built by the migrations."""
    url = await new_database_url(request.param, tmp_path_factory.mktemp("sqlite"))
    engine = create_engine(make_settings(database_url=url))
    try:
        await upgrade_to_head(engine)
        yield engine
    finally:
        await engine.dispose()
        await drop_database_url(url)


@pytest.fixture
async def db(migrated_engine: AsyncEngine) -> AsyncIterator[Database]:
    """A Database whose every session joins one transaction, rolled back after the test."""
    async with migrated_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield Database(migrated_engine, bind=connection)
        finally:
            await transaction.rollback()


@pytest.fixture
def backend_name(db: Database) -> str:
    return db.dialect_name


@pytest.fixture
async def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database outside any test transaction, for work that must really commit.

    Parametrize it indirectly with the backend: `@pytest.mark.parametrize("fresh_database_url",
    BACKENDS, indirect=True)`.
    """
    url = await new_database_url(request.param, tmp_path / "fresh")
    try:
        yield url
    finally:
        await drop_database_url(url)


@pytest.fixture
def settings(db: Database) -> Settings:
    return make_settings(database_url=db.engine.url.render_as_string(hide_password=False))


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as http:
        yield http


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "setup" and report.skipped and "postgresql" in report.nodeid:
        _skipped_postgres_tests.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped_postgres_tests:
        terminalreporter.write_line(
            f"!!! POSTGRESQL NOT TESTED: {len(_skipped_postgres_tests)} PostgreSQL test(s) skipped because "
            "no server answered at PAYCORE_TEST_POSTGRES_URL; only SQLite was tested. "
            "CI sets PAYCORE_TEST_REQUIRE_POSTGRES=1 to make this a failure.",
            red=True,
            bold=True,
        )


@pytest.fixture
async def redis_url() -> str:
    """The test Redis (PAYCORE_TEST_REDIS_URL); required wherever PostgreSQL is (CI)."""
    reason = await redis_unavailable_reason()
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"Redis unavailable at {REDIS_URL} ({reason})", pytrace=False)
        pytest.skip(f"Redis unavailable ({reason})")
    return REDIS_URL


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    """A real SMTP server (aiosmtpd) on a free port, and the mails it received."""
    received: list[Message] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            received.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()
