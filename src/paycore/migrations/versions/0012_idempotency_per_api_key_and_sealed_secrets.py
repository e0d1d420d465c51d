"""idempotency keys per API key, sealed saved answers and webhook secrets

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-04 15:00:00.000000

A saved answer is now keyed by the API key that made the request as well. The answers saved
before this revision cannot be tied to a key, and their bodies are in plain text (some hold a
`whsec_` secret), so they are dropped: a retry of a request made before the upgrade runs again.

`webhook_endpoints.secrets_key_id` names the key a row's secrets are sealed under; NULL marks a
row written before sealing (plain text), read as such until `paycore providers reseal` seals it.
A migration cannot seal: the key lives in the application's settings, not here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM idempotency_keys"))
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=40), nullable=False))
        batch_op.add_column(sa.Column("secrets_key_id", sa.String(length=32), nullable=True))
        batch_op.drop_constraint("uq_idempotency_keys_tenant_id_livemode_key", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_idempotency_keys_tenant_id_livemode_api_key_id_key"),
            ["tenant_id", "livemode", "api_key_id", "key"],
        )

    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secrets_key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Forward-only: roll back by restoring a backup or shipping a new migration.
    raise NotImplementedError("paycore migrations are forward-only")
