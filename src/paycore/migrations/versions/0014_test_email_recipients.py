"""test email recipients

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 14:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Test-mode customer emails go only to these addresses and the tenant's console users; the
    # outbox's new `suppressed` status needs no schema change (statuses are plain strings).
    op.create_table(
        "test_email_recipients",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_test_email_recipients_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_email_recipients")),
        sa.UniqueConstraint(
            "tenant_id", "livemode", "email", name=op.f("uq_test_email_recipients_tenant_id_livemode_email")
        ),
    )


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
