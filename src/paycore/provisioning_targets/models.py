from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class ProvisioningTarget(Base):
    """A tenant's provisioning endpoint. Its `whsec_` secret signs every call to it and nothing
    else, so no tenant's secret can sign a call to another tenant's endpoint. Secrets are sealed
    (AES-GCM, see `paycore.secrets_box`) under a context naming this row; while a secret is being
    rotated, the previous one keeps signing alongside it until `previous_secret_expires_at`."""

    __tablename__ = "provisioning_targets"
    __table_args__ = (Index(None, "tenant_id", "livemode", "created_at"),)

    id: Mapped[str] = id_column("pvt")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    sealed_secret: Mapped[str] = mapped_column(Text)
    sealed_previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    # Which key of the keyring sealed them: rows not under the first key are resealed on rotation.
    secrets_key_id: Mapped[str] = mapped_column(String(32))
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
