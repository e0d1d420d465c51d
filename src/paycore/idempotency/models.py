from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, UTCDateTime, created_column, id_column, tenant_column


class KeyState(StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"


class IdempotencyKey(Base):
    """One Idempotency-Key of one API key. The saved answer is sealed (`paycore.sealing`): it may
    carry a secret shown once (a webhook endpoint's `whsec_…`, a checkout's receipt token)."""

    __tablename__ = "idempotent_requests"
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


# The table before saved answers were per API key and sealed (revision 0012). It stays only while
# the release before 0012 may still be serving during a rolling deploy (the prune job empties it
# after the TTL), and a later migration drops it. Declared so the schema and the models agree.
legacy_idempotency_keys = Table(
    "idempotency_keys",
    Base.metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("key", String(255), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", String(500), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("response_status", Integer),
    Column("response_body", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime()),
    UniqueConstraint("tenant_id", "livemode", "key"),
    Index(None, "created_at"),
)
