"""notify workers when work is written (PostgreSQL): LISTEN paycore_work

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 02:00:00

A statement-level trigger on the outbox and fulfillments sends `NOTIFY paycore_work` when rows are
inserted; PostgreSQL delivers it at commit (and folds repeats within one transaction), so a
listening worker starts delivering at once instead of at its next poll. SQLite has no NOTIFY:
workers there poll.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION paycore_notify_work() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('paycore_work', TG_TABLE_NAME);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    for table in ("outbox", "fulfillments"):
        op.execute(
            f"CREATE TRIGGER {table}_notify_work AFTER INSERT ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION paycore_notify_work()"
        )


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
