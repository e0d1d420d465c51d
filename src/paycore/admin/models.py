from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column


class AdminSession(Base):
    """A signed-in console user. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = id_column("ses")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # No tenant_id of its own: the user names the tenant, and the token is unique across all.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_column()
