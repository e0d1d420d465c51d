"""idempotent requests per API key with sealed answers; sealed webhook secrets

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 15:00:00.000000

Saved answers move to a new table, `idempotent_requests`, unique per (tenant, mode, API key,
key), where the answer is sealed. A new table rather than a changed one keeps the rule that a
migration never breaks the release before it: during a rolling deploy the old code still claims
keys in `idempotency_keys` by the old unique constraint. Its rows cannot be tied to an API key and
hold answers in plain text (some a `whsec_` secret), so they are not carried over but deleted; a
later release drops the table. A retry of a request answered before the upgrade runs again.

`webhook_endpoints.secrets_key_id` names the key a row's secrets are sealed under; NULL marks a
row written before sealing (plain text), read as such until `paycore providers reseal` seals it.
A migration cannot seal: the key lives in the application's settings, not here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotent_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("secrets_key_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_idempotent_requests_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotent_requests")),
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "api_key_id",
            "key",
            name=op.f("uq_idempotent_requests_tenant_id_livemode_api_key_id_key"),
        ),
    )
    with op.batch_alter_table("idempotent_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotent_requests_created_at"), ["created_at"], unique=False)

    op.execute(sa.text("DELETE FROM idempotency_keys"))

    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secrets_key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
