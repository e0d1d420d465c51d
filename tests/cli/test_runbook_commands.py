"""The commands the runbook tells an operator to run at 3 a.m., each run here as written."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from paycore.db import Database, create_engine
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.tenancy.models import Tenant
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.conftest import make_settings

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


async def add_dead_message(url: str, slug: str) -> str:
    database = Database(create_engine(make_settings(database_url=url)))
    try:
        async with database.session(write=True) as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
            assert tenant is not None
            message = OutboxMessage(
                tenant_id=tenant.id,
                livemode=False,
                channel=OutboxChannel.EMAIL,
                topic="email.order_paid",
                dedupe_key="runbook-dead-1",
                payload={},
                status=OutboxStatus.DEAD,
                attempts=4,
                last_error="SMTP 554 rejected",
            )
            session.add(message)
            await session.flush()
            return message.id
    finally:
        await database.dispose()


async def status_of(url: str, message_id: str) -> OutboxStatus:
    database = Database(create_engine(make_settings(database_url=url)))
    try:
        async with database.session(write=False) as session:
            message = await session.get(OutboxMessage, message_id)
            assert message is not None
            return message.status
    finally:
        await database.dispose()


def test_the_dead_letter_queue_is_listed_and_replayed(cli: Cli, fresh_database_url: str) -> None:
    cli("db", "migrate")
    cli("tenants", "create", "--slug", "dead-shop", "--name", "Dead Shop")
    message_id = asyncio.run(add_dead_message(fresh_database_url, "dead-shop"))
    listed = cli("outbox", "list", "--status", "dead", env={"COLUMNS": "200"})
    assert message_id in listed and "SMTP 554" in listed
    cli("outbox", "replay", "--all-dead")
    assert asyncio.run(status_of(fresh_database_url, message_id)) is not OutboxStatus.DEAD
    assert message_id not in cli("outbox", "list", "--status", "dead", env={"COLUMNS": "200"})


def test_a_leaked_platform_key_is_revoked(cli: Cli) -> None:
    cli("db", "migrate")
    created = cli("platform-keys", "create", "--name", "leaked")
    key_id = next(word for word in created.split() if word.startswith("pkey_"))
    assert f"Revoked {key_id}" in cli("platform-keys", "revoke", key_id)
    assert "revoked" in cli("platform-keys", "list", env={"COLUMNS": "200"})
    assert "no platform key" in cli("platform-keys", "revoke", "pkey_nope", expect=1)


def test_provider_keys_are_listed_and_resealed_under_a_new_secrets_key(
    cli: Cli, fresh_database_url: str
) -> None:
    cli("db", "migrate")
    cli("tenants", "create", "--slug", "seal-shop", "--name", "Seal Shop")
    old_key = cli("providers", "new-secrets-key", "--kid", "k1").strip().splitlines()[-1]
    credentials = json.dumps(
        {
            "secret_key": "sk_test_seal0123456789abcdefghij",
            "publishable_key": "pk_test_shownpublicly0123456789",
        }
    )
    cli(
        "providers",
        "set",
        "stripe",
        "--tenant",
        "seal-shop",
        "--mode",
        "test",
        "--credentials-file",
        "-",
        "--webhook-secret",
        "whsec_seal_0123456789abcdef",
        env={"PAYCORE_SECRETS_KEY": old_key},
        input=credentials,
    )
    listed = cli(
        "providers",
        "list",
        "--tenant",
        "seal-shop",
        "--mode",
        "test",
        env={"PAYCORE_SECRETS_KEY": old_key, "COLUMNS": "200"},
    )
    assert "stripe" in listed and "sk_test_…ghij" in listed and "sk_test_seal" not in listed

    new_key = cli("providers", "new-secrets-key", "--kid", "k2").strip().splitlines()[-1]
    assert new_key.startswith("k2:")
    rotated = {"PAYCORE_SECRETS_KEY": f"{new_key},{old_key}"}
    assert "Resealed 1 credential row(s)" in cli("providers", "reseal", env=rotated)
    assert "Resealed 0 credential row(s)" in cli("providers", "reseal", env=rotated)
    # Now the old key can go: the rows open under the new one alone.
    only_new = cli(
        "providers",
        "list",
        "--tenant",
        "seal-shop",
        "--mode",
        "test",
        env={"PAYCORE_SECRETS_KEY": new_key, "COLUMNS": "200"},
    )
    assert "sk_test_…ghij" in only_new
