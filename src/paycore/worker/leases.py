"""Leases: a named lock with an expiry, taken with one upsert that both backends support."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.db import upsert_insert
from paycore.worker.models import Lease


async def try_acquire_lease(
    session: AsyncSession, *, name: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Take `name` until `now + ttl` if it is free, expired, or already ours.

    One statement, so two processes racing for the same lease cannot both win: the loser's
    conflict-update matches no row and returns nothing.
    """
    insert = upsert_insert(session, Lease.__table__).values(
        name=name, holder=holder, until=now + ttl, acquired_at=now
    )
    statement = insert.on_conflict_do_update(
        index_elements=[Lease.name],
        set_={"holder": holder, "until": now + ttl, "acquired_at": now},
        where=or_(Lease.until <= now, Lease.holder == holder),
    ).returning(Lease.holder)
    winner = (await session.execute(statement)).scalar_one_or_none()
    return winner == holder


async def lease_expiry(session: AsyncSession, *, name: str) -> datetime | None:
    return await session.scalar(select(Lease.until).where(Lease.name == name))


async def release_lease(session: AsyncSession, *, name: str, holder: str) -> None:
    await session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
