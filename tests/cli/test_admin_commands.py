from __future__ import annotations

import asyncio

import pytest

from paycore.auth.service import authenticate_api_key
from paycore.db import Database, create_engine
from paycore.migrations import all_revisions, head_revision
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.conftest import make_settings

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


def authenticates(database_url: str, key: str) -> bool:
    async def check() -> bool:
        database = Database(create_engine(make_settings(database_url=database_url)))
        try:
            async with database.session(write=False) as session:
                await authenticate_api_key(session, key)
            return True
        except Exception:
            return False
        finally:
            await database.dispose()

    return asyncio.run(check())


class TestDbCommands:
    def test_migrate_is_idempotent_and_status_tells(self, cli: Cli) -> None:
        head, history = head_revision(), all_revisions()
        assert f"pending   {', '.join(history)}" in cli("db", "status")
        cli("db", "status", "--check", expect=1)
        assert f"Applied {len(history)} migration(s)" in cli("db", "migrate")
        assert f"Already at head {head}" in cli("db", "migrate")
        assert "nothing to do" in cli("db", "migrate")
        status = cli("db", "status", "--check")
        assert f"current   {head}" in status
        assert "pending   none" in status


class TestTenantAndKeyCommands:
    def test_tenant_key_lifecycle(self, cli: Cli, fresh_database_url: str) -> None:
        cli("db", "migrate")
        tenant = cli.json("tenants", "create", "--slug", "cli-shop", "--name", "CLI Shop")
        assert set(tenant) == {"id", "slug"}
        assert tenant["slug"] == "cli-shop"
        assert "already exists" in cli("tenants", "create", "--slug", "cli-shop", "--name", "Again", expect=1)

        created = cli.json(
            "keys",
            "create",
            "--tenant",
            "cli-shop",
            "--mode",
            "test",
            "--kind",
            "secret",
            "--scopes",
            "read,ops",
        )
        key = str(created["key"])
        assert key.startswith("sk_test_")
        assert created["prefix"] == key[:20]
        assert created["scopes"] == ["read", "ops"]
        assert authenticates(fresh_database_url, key)

        listing = cli("keys", "list", "--tenant", "cli-shop", "--json")
        assert key not in listing
        assert str(created["prefix"]) in listing

        assert f"Revoked {created['id']}" in cli("keys", "revoke", str(created["id"]), "--tenant", "cli-shop")
        assert "already revoked" in cli("keys", "revoke", str(created["id"]), "--tenant", "cli-shop")
        assert not authenticates(fresh_database_url, key)
        assert '"status": "revoked"' in cli("keys", "list", "--tenant", "cli-shop", "--json")

    def test_bad_input_exits_1_with_a_message(self, cli: Cli) -> None:
        cli("db", "migrate")
        assert "No tenant with slug 'ghost'" in cli(
            "keys", "create", "--tenant", "ghost", "--mode", "test", "--kind", "secret", expect=1
        )
        cli("tenants", "create", "--slug", "shop-b", "--name", "B")
        assert "unknown scope" in cli(
            "keys",
            "create",
            "--tenant",
            "shop-b",
            "--mode",
            "test",
            "--kind",
            "secret",
            "--scopes",
            "admin",
            expect=1,
        )
        assert "slug must be" in cli("tenants", "create", "--slug", "Not OK", "--name", "X", expect=1)


class TestUserCommands:
    def test_create_owner_is_idempotent_and_refuses_weak_passwords(self, cli: Cli) -> None:
        cli("db", "migrate")
        cli("tenants", "create", "--slug", "owner-shop", "--name", "Owner Shop")
        args = (
            "users",
            "create-owner",
            "--tenant",
            "owner-shop",
            "--email",
            "boss@shop.test",
            "--password-env",
            "PW",
        )
        assert "Created owner boss@shop.test" in cli(*args, env={"PW": "violet-orbit-tundra-42"})
        assert "nothing changed" in cli(*args, env={"PW": "violet-orbit-tundra-42"})
        assert "shorter than 12 characters" in cli(*args, env={"PW": "short"}, expect=1)
        assert "well-known password" in cli(*args, env={"PW": "password1234"}, expect=1)
        assert "is not set" in cli(*args, expect=1)

    def test_set_password_rotates_it(self, cli: Cli) -> None:
        cli("db", "migrate")
        cli("tenants", "create", "--slug", "rotate-shop", "--name", "Rotate Shop")
        base = ("--tenant", "rotate-shop", "--email", "boss@shop.test", "--password-env", "PW")
        cli("users", "create-owner", *base, env={"PW": "violet-orbit-tundra-42"})
        assert "Password set for boss@shop.test" in cli(
            "users", "set-password", *base, env={"PW": "amber-delta-ocean-77"}
        )
        assert "well-known password" in cli(
            "users", "set-password", *base, env={"PW": "password1234"}, expect=1
        )
        missing = ("--tenant", "rotate-shop", "--email", "nobody@shop.test", "--password-env", "PW")
        assert "No user" in cli(
            "users", "set-password", *missing, env={"PW": "amber-delta-ocean-77"}, expect=1
        )

    def test_fulfillments_list_and_retry(self, cli: Cli) -> None:
        cli("db", "migrate")
        assert cli.json("fulfillments", "list", "--status", "needs_attention") == {"data": []}
        assert "(none)" in cli("fulfillments", "list", "--status", "needs_attention")
        assert "No fulfillment ful_nope" in cli("fulfillments", "retry", "ful_nope", expect=1)

    def test_platform_keys_are_shown_once(self, cli: Cli) -> None:
        cli("db", "migrate")
        created = cli("platform-keys", "create", "--name", "ops")
        assert "plat_" in created
        listed = cli("platform-keys", "list")
        key = next(line.split()[-1] for line in created.splitlines() if line.startswith("plat_"))
        assert key not in listed and key[-4:] in listed

    def test_password_from_a_prompt(self, cli: Cli) -> None:
        cli("db", "migrate")
        cli("tenants", "create", "--slug", "prompt-shop", "--name", "Prompt Shop")
        output = cli(
            "users",
            "create-owner",
            "--tenant",
            "prompt-shop",
            "--email",
            "p@shop.test",
            input="violet-orbit-tundra-42\nviolet-orbit-tundra-42\n",
        )
        assert "Created owner p@shop.test" in output


class TestDemoSetup:
    def test_demo_is_created_once_and_its_keys_shown_every_time(
        self, cli: Cli, fresh_database_url: str
    ) -> None:
        cli("db", "migrate")
        first = cli("demo", "setup")
        second = cli("demo", "setup")
        assert "created" in first
        assert "ready" in second
        keys = [line.split()[-1] for line in first.splitlines() if "key " in line and "_test_" in line]
        assert len(keys) == 2
        assert all(key in second for key in keys)
        assert all(authenticates(fresh_database_url, key) for key in keys)
        assert (cli.workdir / "var" / "demo-keys.json").stat().st_mode & 0o777 == 0o600

    def test_demo_is_refused_in_production(self, cli: Cli) -> None:
        env = {
            "PAYCORE_ENV": "production",
            "PAYCORE_CHECKOUT_TOKEN_SECRET": "k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ",
        }
        assert "development only" in cli("demo", "setup", env=env, expect=1)


class TestEventCommands:
    def test_failed_events_are_listed_and_replayed_once(self, cli: Cli, fresh_database_url: str) -> None:
        cli("db", "migrate")
        tenant = cli.json("tenants", "create", "--slug", "events-shop", "--name", "Events")

        async def add_failed_event() -> None:
            from paycore.payments.models import EventResult, PaymentEvent

            database = Database(create_engine(make_settings(database_url=fresh_database_url)))
            try:
                async with database.session() as session:
                    session.add(
                        PaymentEvent(
                            id="evt_broken",
                            tenant_id=str(tenant["id"]),
                            livemode=False,
                            provider="sandbox",
                            provider_event_id="sbevt_broken",
                            type="payment.succeeded",
                            payload={"id": "sbevt_broken"},
                            result=EventResult.FAILED,
                            attempts=8,
                            error="RuntimeError: a bug since fixed",
                        )
                    )
            finally:
                await database.dispose()

        asyncio.run(add_failed_event())
        assert "evt_broken" in cli("events", "list", "--result", "failed")
        assert "will be applied again" in cli("events", "replay", "evt_broken")
        assert "is not a failed event" in cli("events", "replay", "evt_broken", expect=1)
        assert "evt_broken" in cli("events", "list", "--result", "pending")
        assert "evt_broken" not in cli("events", "list", "--result", "failed")
        assert "unknown result" in cli("events", "list", "--result", "bogus", expect=1)
