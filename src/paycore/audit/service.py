"""Recording audit rows, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.models import AuditEntry
from paycore.logging import current_request_id, redact


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: `cli:<user>`, `key:<key id>`, `user:<user id>`, `system:<job>`."""

    name: str
    ip: str | None = None
    user_agent: str | None = None


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
) -> AuditEntry:
    """Add an audit row to the session; it commits (or not) with the change it describes."""
    entry = AuditEntry(
        tenant_id=tenant_id,
        actor=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=redact(before) if before is not None else None,
        after=redact(after) if after is not None else None,
        correlation_id=current_request_id(),
        ip=actor.ip,
        user_agent=actor.user_agent[:400] if actor.user_agent else None,
    )
    session.add(entry)
    return entry
