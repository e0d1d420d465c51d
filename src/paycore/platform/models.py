from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column


class PlatformKey(Base):
    """A platform operator's credential (scope `platform`): belongs to no tenant. Stored, like
    API keys, as the SHA-256 of its text; `prefix` finds the row."""

    __tablename__ = "platform_keys"

    id: Mapped[str] = id_column("pkey")
    name: Mapped[str | None] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    last4: Mapped[str] = mapped_column(String(4))
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
