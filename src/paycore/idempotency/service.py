"""Idempotency keys: claim, save the result, replay it; prune old ones.

Stripe's semantics: the first request's status and body are saved once its handler starts and
replayed to retries with the same key and the same request; a different request under the same
key is refused (422 `idempotency_key_reused`), as is a retry while the first still runs (409
`idempotency_key_in_use`). Requests that fail validation are not saved, so they may be retried.

A key belongs to the API key that sent it (tenant, mode and API key), and the saved answer is
sealed under `PAYCORE_SECRETS_KEY` with that identity as its associated data: an answer may carry
a secret shown once, and a copy of the database must not show it again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.clock import utcnow
from paycore.db import dialect_insert, dialect_of, table_of
from paycore.errors import IdempotencyError, ServiceUnavailable
from paycore.idempotency.models import IdempotencyKey, KeyState, legacy_idempotency_keys
from paycore.ids import new_id
from paycore.logging import get_logger
from paycore.secrets_box import SealError, SecretsBox

log = get_logger(__name__)

MAX_KEY_LENGTH = 255


class SavedAnswerUnreadable(ServiceUnavailable):
    code = "idempotent_answer_unreadable"


@dataclass(frozen=True, slots=True)
class KeyRef:
    """An Idempotency-Key is unique per tenant, mode and API key."""

    tenant_id: str
    livemode: bool
    api_key_id: str
    key: str

    def where(self) -> tuple[Any, ...]:
        return (
            IdempotencyKey.tenant_id == self.tenant_id,
            IdempotencyKey.livemode == self.livemode,
            IdempotencyKey.api_key_id == self.api_key_id,
            IdempotencyKey.key == self.key,
        )

    def seal_context(self) -> bytes:
        """The row's identity, authenticated with its sealed answer: copied to another key's row,
        it does not open. (An Idempotency-Key is printable, so it holds no separator.)"""
        mode = "live" if self.livemode else "test"
        return f"idempotent-answer\x1f{self.tenant_id}\x1f{mode}\x1f{self.api_key_id}\x1f{self.key}".encode()


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


@cache
def _claim_statement(dialect_name: str) -> Any:
    """Built once per dialect (every POST with a key runs it), its values bound at execution."""
    return dialect_insert(dialect_name, table_of(IdempotencyKey)).on_conflict_do_nothing(
        index_elements=["tenant_id", "livemode", "api_key_id", "key"]
    )


_keys = table_of(IdempotencyKey)
_SAVE_RESPONSE = (
    update(_keys)
    .where(
        _keys.c.tenant_id == bindparam("ref_tenant_id"),
        _keys.c.livemode == bindparam("ref_livemode"),
        _keys.c.api_key_id == bindparam("ref_api_key_id"),
        _keys.c.key == bindparam("ref_key"),
    )
    .values(
        state=KeyState.DONE,
        response_status=bindparam("status"),
        response_body=bindparam("body"),
        secrets_key_id=bindparam("kid"),
        completed_at=bindparam("done_at"),
    )
)


async def claim_key(
    session: AsyncSession, box: SecretsBox, ref: KeyRef, *, method: str, path: str, fingerprint: str
) -> SavedResponse | None:
    """Claim `key` for this request (None: go ahead), or return the response to replay."""
    now = utcnow()
    inserted = await session.execute(
        _claim_statement(dialect_of(session)),
        {
            "id": new_id("idem"),
            "tenant_id": ref.tenant_id,
            "livemode": ref.livemode,
            "api_key_id": ref.api_key_id,
            "key": ref.key,
            "method": method,
            "path": path,
            "request_hash": fingerprint,
            "state": KeyState.IN_FLIGHT.value,
            "created_at": now,
        },
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
    return SavedResponse(status=existing.response_status, body=_open_answer(box, ref, existing))


def _open_answer(box: SecretsBox, ref: KeyRef, row: IdempotencyKey) -> bytes:
    try:
        return box.open(row.response_body or "", context=ref.seal_context())
    except SealError as exc:
        # The request ran; running it again could charge twice. Refuse, loudly, until the key
        # that sealed it is back in PAYCORE_SECRETS_KEY.
        log.error(
            "idempotent_answer_unreadable", tenant=ref.tenant_id, key_id=row.secrets_key_id, error=str(exc)
        )
        raise SavedAnswerUnreadable(
            "The saved answer to this Idempotency-Key cannot be opened; the operator has been told."
        ) from None


async def save_response(
    session: AsyncSession, box: SecretsBox, ref: KeyRef, *, status: int, body: bytes
) -> None:
    await session.execute(
        _SAVE_RESPONSE,
        {
            "ref_tenant_id": ref.tenant_id,
            "ref_livemode": ref.livemode,
            "ref_api_key_id": ref.api_key_id,
            "ref_key": ref.key,
            "status": status,
            "body": box.seal(body, context=ref.seal_context()),
            "kid": box.primary_kid,
            "done_at": utcnow(),
        },
    )


async def release_key(session: AsyncSession, ref: KeyRef) -> None:
    """Forget a claim whose request never really ran (it failed validation): it may be retried."""
    await session.execute(
        delete(IdempotencyKey).where(*ref.where(), IdempotencyKey.state == KeyState.IN_FLIGHT)
    )


async def prune_keys(session: AsyncSession, *, older_than: timedelta, now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    # What the release before revision 0012 saved while a rolling deploy still ran it (in plain
    # text) goes after the same time.
    legacy = await session.execute(
        delete(legacy_idempotency_keys).where(legacy_idempotency_keys.c.created_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0) + int(getattr(legacy, "rowcount", 0) or 0)


async def reseal_answers(session: AsyncSession, box: SecretsBox) -> int:
    """Reseal every saved answer not sealed under the keyring's first key; returns how many."""
    rows = await session.scalars(
        select(IdempotencyKey)
        .where(IdempotencyKey.state == KeyState.DONE, IdempotencyKey.secrets_key_id != box.primary_kid)
        .with_for_update()
    )
    count = 0
    for row in rows:
        ref = KeyRef(tenant_id=row.tenant_id, livemode=row.livemode, api_key_id=row.api_key_id, key=row.key)
        row.response_body = box.seal(_open_answer(box, ref, row), context=ref.seal_context())
        row.secrets_key_id = box.primary_kid
        count += 1
    await session.flush()
    return count
