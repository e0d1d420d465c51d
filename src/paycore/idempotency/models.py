from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column


class KeyState(StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"


class IdempotencyKey(Base):
    """One Idempotency-Key of one API key. The saved answer is sealed (`paycore.sealing`): it may
    carry a secret shown once (a webhook endpoint's `whsec_…`, a checkout's receipt token)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "livemode", "api_key_id", "key"),
        Index(None, "created_at"),
    )

    id: Mapped[str] = id_column("idem")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    # The API key that made the request: another key of the tenant neither sees nor blocks it.
    api_key_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[KeyState] = mapped_column(default=KeyState.IN_FLIGHT)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    secrets_key_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = created_column()
    completed_at: Mapped[datetime | None]
