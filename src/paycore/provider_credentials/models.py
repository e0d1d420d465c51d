from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class ProviderCredential(Base):
    """One tenant's account at one provider in one mode. `sealed` holds every secret (AES-GCM,
    see `paycore.secrets_box`); `hints` only what may be shown (`sk_test_…4242`)."""

    __tablename__ = "provider_credentials"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "livemode"),)

    id: Mapped[str] = id_column("pcr")
    tenant_id: Mapped[str] = tenant_column()
    provider: Mapped[str] = mapped_column(String(32))
    livemode: Mapped[bool]
    sealed: Mapped[str] = mapped_column(Text)
    # Which key of the keyring sealed it: rows not under the first key are resealed on rotation.
    secrets_key_id: Mapped[str] = mapped_column(String(32))
    hints: Mapped[dict[str, Any]]
    has_webhook_secret: Mapped[bool] = mapped_column(default=False)
    # Until then the previous webhook secret still verifies (a rotation window).
    previous_webhook_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
