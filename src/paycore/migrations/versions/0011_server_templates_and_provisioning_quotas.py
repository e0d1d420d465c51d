"""server templates and provisioning quotas

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 14:44:44.221593
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL, JSON text on SQLite.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", JSON_DOCUMENT, nullable=False),
        sa.Column("variables", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_templates")),
        sa.UniqueConstraint("code", name=op.f("uq_server_templates_code")),
    )
    with op.batch_alter_table("fulfillments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("server_memory_mb", sa.Integer(), nullable=True))

    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_servers", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_server_memory_mb", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
