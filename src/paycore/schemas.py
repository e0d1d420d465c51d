"""API shapes shared by every domain."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict

from paycore.pagination import DEFAULT_LIMIT, MAX_LIMIT

T = TypeVar("T")


_RFC3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339_only(value: object) -> object:
    """Pydantic would also take a number of seconds ("0.5") as a time; the API says RFC 3339."""
    if isinstance(value, str) and not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


# A point in time from a client: must carry an offset (RFC 3339) and exist in UTC.
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_in_utc)]

# Unicode categories refused in text shown to people (a name in an email's greeting, a shop's
# name in its subject): controls (a bell, a line break that forges a header-looking line),
# format characters (U+202E right-to-left override, which makes "moc.evil" read "live.com"),
# surrogates and line/paragraph separators. Zero-width (non-)joiners are format characters that
# Persian and Indic names need, so they stay.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def _no_hidden_characters(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in _HIDDEN_CATEGORIES and char not in _JOINERS:
            raise ValueError(f"must not contain control or formatting characters (found U+{ord(char):04X})")
    return value


# Free text that reaches a person (an email, a page): printable characters only. Give it a
# `max_length` where it is used.
DisplayText = Annotated[str, AfterValidator(_no_hidden_characters)]

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size, 1 to 100.")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]


class ListOut(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    next_cursor: str | None


class ErrorDetail(BaseModel):
    type: str
    code: str
    message: str
    param: str | None = None
    request_id: str | None = None


class ErrorOut(BaseModel):
    """The one envelope every refusal and failure comes in."""

    error: ErrorDetail


# Documented on every operation: any 4xx or 5xx arrives in the envelope.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    "4XX": {"model": ErrorOut, "description": "Refused; `error.code` says why."},
    "5XX": {"model": ErrorOut, "description": "paycore or a provider is unavailable; safe to retry."},
}


class StrictInput(BaseModel):
    """Request bodies refuse fields they do not know: a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


__all__ = [
    "DEFAULT_LIMIT",
    "ERROR_RESPONSES",
    "CursorQuery",
    "DisplayText",
    "ErrorOut",
    "LimitQuery",
    "ListOut",
    "StrictInput",
    "UtcDatetime",
]
