"""payment attempt reconcile backoff

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 03:39:12.232047
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reconcile_checks", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_reconcile_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
