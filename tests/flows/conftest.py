from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.migrations import upgrade_to_head
from tests.conftest import make_settings


@dataclass
class LiveApp:
    """An app on its own committed database, for tests that need real concurrency."""

    database: Database
    settings: Settings
    client: httpx.AsyncClient


@pytest.fixture
async def live(fresh_database_url: str) -> AsyncIterator[LiveApp]:
    settings = make_settings(database_url=fresh_database_url, database_pool_size=20, database_max_overflow=20)
    database = Database(create_engine(settings))
    await upgrade_to_head(database.engine)
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=settings.public_url, timeout=60) as client:
            yield LiveApp(database=database, settings=settings, client=client)
    finally:
        await database.dispose()
