"""Rows of one state change held and inserted together, one statement per table.

Applying a payment event writes several audit rows (the attempt, `order.paid`, `order.fulfilled`)
and several outbox rows (the email, the merchant events). Added one at a time they cost a round
trip each. Inside `batched_writes(session)` the services that write them (`record_audit`,
`outbox.service.enqueue`) hold their rows instead, and the rows are inserted when the block ends —
still inside the caller's transaction, so they commit (or not) with the change they describe.
Outside such a block those services write at once; the rows are the same either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_BATCH = "paycore.write_batch"

# Given the session, the INSERT that `.values(rows)` completes for a table's held rows.
InsertFor = Callable[[AsyncSession], Any]


@dataclass(slots=True)
class _Held:
    insert: InsertFor
    rows: list[dict[str, Any]] = field(default_factory=list)


def held_rows(session: AsyncSession, table: str, insert: InsertFor) -> list[dict[str, Any]] | None:
    """The list to append `table`'s rows to while a batch is open on `session`; None otherwise."""
    batch: dict[str, _Held] | None = session.info.get(_BATCH)
    if batch is None:
        return None
    return batch.setdefault(table, _Held(insert)).rows


@asynccontextmanager
async def batched_writes(session: AsyncSession) -> AsyncIterator[None]:
    """Hold the rows written in the block; insert them when it ends without error."""
    if _BATCH in session.info:  # nested: the outer block writes them
        yield
        return
    batch: dict[str, _Held] = {}
    session.info[_BATCH] = batch
    try:
        yield
        for held in batch.values():  # in the order the tables were first written
            if held.rows:
                await session.execute(held.insert(session).values(held.rows))
    finally:
        session.info.pop(_BATCH, None)
