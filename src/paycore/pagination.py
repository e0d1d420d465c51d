"""Cursor pagination: newest first, stable by (created_at, id), for every list endpoint."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from paycore.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool
    next_cursor: str | None


def encode_cursor(created_at: datetime, object_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), object_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, object_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = datetime.fromisoformat(created)
        if after.tzinfo is None:
            raise ValueError("no UTC offset")  # we only hand out aware times; naive ones made a 500
        return after.astimezone(UTC), str(object_id)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise ValidationFailed("cursor is not a cursor this API returned.", param="cursor") from None


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    created_at: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[str],
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """Run `statement` (one entity per row) a page at a time, newest first."""
    if cursor is not None:
        after_created, after_id = decode_cursor(cursor)
        statement = statement.where(
            or_(created_at < after_created, and_(created_at == after_created, id_column < after_id))
        )
    statement = statement.order_by(created_at.desc(), id_column.desc()).limit(limit + 1)
    rows: Sequence[Any] = (await session.scalars(statement)).all()
    items = list(rows[:limit])
    has_more = len(rows) > limit
    next_cursor = None
    if has_more and items:
        last = items[-1]
        next_cursor = encode_cursor(getattr(last, created_at.key), getattr(last, id_column.key))
    return Page(items=items, has_more=has_more, next_cursor=next_cursor)
