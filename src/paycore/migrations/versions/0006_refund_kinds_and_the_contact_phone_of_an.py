"""refund kinds and the contact phone of an order

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 02:44:05.438979
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_phone", sa.String(length=32), nullable=True))

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="requested")
        )
    # Refunds written before kinds existed carried their kind in the free-text reason.
    for reason, kind in (
        ("duplicate_payment", "duplicate_payment"),
        ("late_payment_out_of_stock", "late_payment"),
        ("provider", "provider"),
    ):
        op.execute(
            sa.text("UPDATE refunds SET kind = :kind WHERE reason = :reason").bindparams(
                kind=kind, reason=reason
            )
        )


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
