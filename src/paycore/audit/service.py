"""Recording audit rows, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.models import AuditEntry
from paycore.clock import utcnow
from paycore.db import table_of
from paycore.logging import current_request_id, redact
from paycore.write_batch import held_rows


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: `cli:<user>`, `key:<key id>`, `user:<user id>`, `system:<job>`."""

    name: str
    ip: str | None = None
    user_agent: str | None = None


def audit_row(
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    tenant_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of one audit row (for `insert_audit_rows`)."""
    return {
        "tenant_id": tenant_id,
        "actor": actor.name,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "before": redact(before) if before is not None else None,
        "after": redact(after) if after is not None else None,
        "correlation_id": current_request_id(),
        "ip": actor.ip,
        "user_agent": actor.user_agent[:400] if actor.user_agent else None,
    }


def record_audit(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    tenant_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the session (or to its open `batched_writes`); it commits (or not) with
    the change it describes."""
    row = audit_row(
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        tenant_id=tenant_id,
        before=before,
        after=after,
    )
    held = held_rows(session, "audit_log", _insert_audit)
    if held is None:
        session.add(AuditEntry(**row))
    else:
        # Taken now, not at the insert: the timeline orders rows by it.
        held.append(row | {"at": utcnow()})


def _insert_audit(_session: AsyncSession) -> Any:
    return insert(table_of(AuditEntry))


async def insert_audit_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """The audit rows of one change (`audit_row`), written now in one statement rather than at
    the session's next flush; they commit (or not) with the change they describe. A multi-row
    VALUES, not `executemany`: one round trip whatever the driver does with a list of rows."""
    if rows:
        await session.execute(insert(table_of(AuditEntry)).values(rows))
