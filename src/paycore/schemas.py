"""API shapes shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from paycore.pagination import DEFAULT_LIMIT, MAX_LIMIT

T = TypeVar("T")


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


# A point in time from a client: must carry an offset (RFC 3339) and exist in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size, 1 to 100.")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]


class ListOut(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    next_cursor: str | None


class StrictInput(BaseModel):
    """Request bodies refuse fields they do not know: a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


__all__ = ["DEFAULT_LIMIT", "CursorQuery", "LimitQuery", "ListOut", "StrictInput", "UtcDatetime"]
