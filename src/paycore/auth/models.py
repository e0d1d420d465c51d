from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.clock import utcnow
from paycore.db import Base
from paycore.ids import new_id


class KeyMode(StrEnum):
    TEST = "test"
    LIVE = "live"


class KeyKind(StrEnum):
    SECRET = "secret"  # noqa: S105 (a key kind, not a credential)
    PUBLISHABLE = "publishable"


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    REFUNDS = "refunds"
    OPS = "ops"
    PLATFORM = "platform"


class UserRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    SUPPORT = "support"


class ApiKey(Base):
    """A key is stored as the SHA-256 of its full text; `prefix` finds the row, never the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "prefix"), Index(None, "prefix"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(40))
    secret_hash: Mapped[str] = mapped_column(String(64))
    last4: Mapped[str] = mapped_column(String(4))
    mode: Mapped[KeyMode]
    kind: Mapped[KeyKind]
    scopes: Mapped[list[str]] = mapped_column(default=list)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def livemode(self) -> bool:
        return self.mode is KeyMode.LIVE

    @property
    def redacted(self) -> str:
        return f"{self.prefix}…{self.last4}"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usr"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[UserRole]
    # Sign-in lockout: failures since the last success, and until when sign-in is refused.
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
