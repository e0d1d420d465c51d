from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base


class Lease(Base):
    """A named lock with an expiry, so one process at a time runs a periodic job.

    Not tenant-owned: a periodic job (expire orders, reconcile payments) spans every tenant.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime]
    acquired_at: Mapped[datetime]
