"""Typed FastAPI dependencies shared by every domain's endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.config import Settings
from paycore.db import Database
from paycore.payments.providers.registry import ProviderRegistry


# Async on purpose: a plain `def` dependency is run in a worker thread, a hand-off per request.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_registry(request: Request) -> ProviderRegistry:
    registry: ProviderRegistry = request.app.state.providers
    return registry


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
RegistryDep = Annotated[ProviderRegistry, Depends(get_registry)]


async def _read_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    async with database.session(write=False) as session:
        yield session


async def _write_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    async with database.session(write=True) as session:
        yield session


# scope="function": the transaction commits when the route returns, before the response is sent,
# so a failed commit becomes an error response instead of a success the database never saw.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
WriteSessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
