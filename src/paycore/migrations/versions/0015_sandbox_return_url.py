"""sandbox payment return url

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Where the sandbox's pay page sends the customer back (the storefront's return URL), so a
    # declined payment is not a dead end: the storefront can open a new attempt from there.
    with op.batch_alter_table("sandbox_payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("return_url", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
