"""The commands the runbook tells an operator to run at 3 a.m., each run here as written."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from paycore.db import Database, create_engine
from paycore.idempotency.service import KeyRef, claim_key, save_response
from paycore.ids import new_id
from paycore.merchant_webhooks.models import WebhookEndpoint
from paycore.merchant_webhooks.sealing import EndpointSecrets, open_secrets, seal_secrets
from paycore.merchant_webhooks.signing import new_secret
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.secrets_box import SecretsBox
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


async def add_webhook_secrets_and_an_answer(url: str, slug: str, box: SecretsBox) -> list[str]:
    """An endpoint stored before sealing (plain text), one sealed under `box`, and a saved
    idempotent answer sealed under `box`; returns the two endpoints' secrets."""
    database = Database(create_engine(make_settings(database_url=url)))
    try:
        async with database.session(write=True) as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
            assert tenant is not None
            plain, sealed = new_secret(), new_secret()
            session.add(
                WebhookEndpoint(tenant_id=tenant.id, livemode=False, url="https://a.example/h", secret=plain)
            )
            endpoint = WebhookEndpoint(
                id=new_id("we"), tenant_id=tenant.id, livemode=False, url="https://b.example/h"
            )
            seal_secrets(box, endpoint, EndpointSecrets(current=sealed, previous=plain))
            session.add(endpoint)
            ref = KeyRef(tenant_id=tenant.id, livemode=False, api_key_id="key_runbook", key="k1")
            assert await claim_key(session, box, ref, method="POST", path="/v1/x", fingerprint="f") is None
            await save_response(session, box, ref, status=201, body=b'{"secret":"' + sealed.encode() + b'"}')
        return [plain, sealed]
    finally:
        await database.dispose()


async def opened_under(url: str, slug: str, box: SecretsBox) -> tuple[list[EndpointSecrets], bytes]:
    database = Database(create_engine(make_settings(database_url=url)))
    try:
        async with database.session(write=True) as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
            assert tenant is not None
            endpoints = list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.url)))
            opened = [open_secrets(box, endpoint) for endpoint in endpoints]
            assert all(endpoint.secrets_key_id == box.primary_kid for endpoint in endpoints)
            ref = KeyRef(tenant_id=tenant.id, livemode=False, api_key_id="key_runbook", key="k1")
            saved = await claim_key(session, box, ref, method="POST", path="/v1/x", fingerprint="f")
            assert saved is not None
        return opened, saved.body
    finally:
        await database.dispose()


def test_webhook_secrets_and_saved_answers_are_resealed_under_a_new_secrets_key(
    cli: Cli, fresh_database_url: str
) -> None:
    cli("db", "migrate")
    cli("tenants", "create", "--slug", "hook-shop", "--name", "Hook Shop")
    old_key = cli("providers", "new-secrets-key", "--kid", "k1").strip().splitlines()[-1]
    new_key = cli("providers", "new-secrets-key", "--kid", "k2").strip().splitlines()[-1]
    plain, sealed = asyncio.run(
        add_webhook_secrets_and_an_answer(fresh_database_url, "hook-shop", SecretsBox.from_setting(old_key))
    )

    rotated = {"PAYCORE_SECRETS_KEY": f"{new_key},{old_key}"}
    assert "Resealed 2 webhook endpoint(s) and 1 saved idempotent answer(s)" in cli(
        "providers", "reseal", env=rotated
    )
    assert "Resealed 0 webhook endpoint(s) and 0 saved idempotent answer(s)" in cli(
        "providers", "reseal", env=rotated
    )
    opened, answer = asyncio.run(
        opened_under(fresh_database_url, "hook-shop", SecretsBox.from_setting(new_key))
    )
    assert opened == [EndpointSecrets(plain, None), EndpointSecrets(sealed, plain)]
    assert sealed.encode() in answer
