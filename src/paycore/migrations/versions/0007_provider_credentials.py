"""provider credentials

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 03:09:16.819575
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL, JSON text on SQLite.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_credentials",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("secrets_key_id", sa.String(length=32), nullable=False),
        sa.Column("hints", JSON_DOCUMENT, nullable=False),
        sa.Column("has_webhook_secret", sa.Boolean(), nullable=False),
        sa.Column("previous_webhook_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_provider_credentials_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_credentials")),
        sa.UniqueConstraint(
            "tenant_id",
            "provider",
            "livemode",
            name=op.f("uq_provider_credentials_tenant_id_provider_livemode"),
        ),
    )


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
