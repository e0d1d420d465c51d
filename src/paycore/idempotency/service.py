"""Idempotency keys: claim, save the result, replay it; prune old ones.

Stripe's semantics: the first request's status and body are saved once its handler starts and
replayed to retries with the same key and the same request; a different request under the same
key is refused (422 `idempotency_key_reused`), as is a retry while the first still runs (409
`idempotency_key_in_use`). Requests that fail validation are not saved, so they may be retried.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.clock import utcnow
from paycore.db import upsert_insert
from paycore.errors import IdempotencyError
from paycore.idempotency.models import IdempotencyKey, KeyState
from paycore.ids import new_id

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class KeyRef:
    """An Idempotency-Key is unique per tenant and mode."""

    tenant_id: str
    livemode: bool
    key: str

    def where(self) -> tuple[Any, ...]:
        return (
            IdempotencyKey.tenant_id == self.tenant_id,
            IdempotencyKey.livemode == self.livemode,
            IdempotencyKey.key == self.key,
        )


@dataclass(frozen=True, slots=True)
class SavedResponse:
    status: int
    body: bytes


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Same request = same method, path and JSON body (key order and spacing do not matter)."""
    try:
        canonical = (
            json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
        )
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()


def validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            code="idempotency_key_invalid",
            status_code=400,
        )


async def claim_key(
    session: AsyncSession, ref: KeyRef, *, method: str, path: str, fingerprint: str
) -> SavedResponse | None:
    """Claim `key` for this request (None: go ahead), or return the response to replay."""
    now = utcnow()
    inserted = await session.execute(
        upsert_insert(session, IdempotencyKey.__table__)
        .values(
            id=new_id("idem"),
            tenant_id=ref.tenant_id,
            livemode=ref.livemode,
            key=ref.key,
            method=method,
            path=path,
            request_hash=fingerprint,
            state=KeyState.IN_FLIGHT.value,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "livemode", "key"])
    )
    if getattr(inserted, "rowcount", 0):
        return None
    existing = await session.scalar(select(IdempotencyKey).where(*ref.where()))
    assert existing is not None
    if existing.method != method or existing.path != path or existing.request_hash != fingerprint:
        raise IdempotencyError(
            "This Idempotency-Key was used with a different request; use a new key for a new request.",
            code="idempotency_key_reused",
            status_code=422,
        )
    if existing.state is KeyState.IN_FLIGHT or existing.response_status is None:
        raise IdempotencyError(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_key_in_use",
            status_code=409,
        )
    return SavedResponse(status=existing.response_status, body=(existing.response_body or "").encode())


def without_shown_once_secret(body: bytes) -> bytes:
    """The answer as it is kept for replays: a secret shown once (a new webhook endpoint's or
    provisioning target's `secret`) is not written to the database in the clear — a replay says
    null, and the owner rotates the secret if the first answer was lost."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict) or not document.get("secret"):
        return body
    return json.dumps({**document, "secret": None}, separators=(",", ":")).encode()


async def save_response(session: AsyncSession, ref: KeyRef, *, status: int, body: bytes) -> None:
    body = without_shown_once_secret(body)
    await session.execute(
        update(IdempotencyKey)
        .where(*ref.where())
        .values(
            state=KeyState.DONE,
            response_status=status,
            response_body=body.decode("utf-8", "replace"),
            completed_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


async def release_key(session: AsyncSession, ref: KeyRef) -> None:
    """Forget a claim whose request never really ran (it failed validation): it may be retried."""
    await session.execute(
        delete(IdempotencyKey).where(*ref.where(), IdempotencyKey.state == KeyState.IN_FLIGHT)
    )


async def prune_keys(session: AsyncSession, *, older_than: timedelta, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
