from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column


class EmailTestRecipient(Base):
    """An address the merchant vouches for: test-mode customer emails may reach it. Kept per mode
    like every merchant object (a live key neither sees nor changes the test list); only the
    test-mode list is consulted today."""

    __tablename__ = "test_email_recipients"
    __table_args__ = (UniqueConstraint("tenant_id", "livemode", "email"),)

    id: Mapped[str] = id_column("ter")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    # Stored lower-cased, as customers' emails are: compared as they are.
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = created_column()
