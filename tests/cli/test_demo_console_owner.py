"""`paycore demo setup` gives the demo tenant a console owner: a random password (never a fixed one),
kept beside the keys in the 0600 keys file, printed with the console's URL, and one that signs in."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest

from paycore.app import create_app
from paycore.db import Database, create_engine
from tests.admin.test_sign_in import sign_in
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.conftest import make_settings

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


def signs_in(database_url: str, email: str, password: str) -> bool:
    """Whether the console's sign-in form (over HTTP) accepts this demo owner's password."""

    async def attempt() -> bool:
        settings = make_settings(database_url=database_url)
        database = Database(create_engine(settings))
        try:
            app = create_app(settings, database=database)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as client:
                response = await sign_in(client, "demo", email, password)
                if response.status_code != 303:
                    return False
                home = await client.get("/admin")
                return home.status_code == 200 and email in home.text
        finally:
            await database.dispose()

    return asyncio.run(attempt())


def saved(cli: Cli) -> dict[str, str]:
    kept: dict[str, str] = json.loads((cli.workdir / "var" / "demo-keys.json").read_text())
    return kept


class TestTheDemoConsoleOwner:
    def test_setup_prints_a_sign_in_that_works_and_keeps_it_beside_the_keys(
        self, cli: Cli, fresh_database_url: str
    ) -> None:
        cli("db", "migrate")
        output = cli("demo", "setup", env={"PAYCORE_HTTP_PORT": "8123"})
        kept = saved(cli)
        assert kept["console_email"] == "owner@demo.test"
        assert "console          http://127.0.0.1:8123/admin/login" in output
        assert f"email          {kept['console_email']}" in output
        assert f"password       {kept['console_password']}" in output
        assert len(kept["console_password"]) >= 20
        assert (cli.workdir / "var" / "demo-keys.json").stat().st_mode & 0o777 == 0o600
        assert signs_in(fresh_database_url, kept["console_email"], kept["console_password"])

    def test_a_second_setup_keeps_the_same_sign_in(self, cli: Cli, fresh_database_url: str) -> None:
        cli("db", "migrate")
        cli("demo", "setup")
        first = saved(cli)
        assert "ready" in cli("demo", "setup")
        assert saved(cli) == first
        assert signs_in(fresh_database_url, first["console_email"], first["console_password"])

    def test_the_password_is_random_and_a_lost_one_is_replaced(
        self, cli: Cli, fresh_database_url: str, tmp_path: Path
    ) -> None:
        cli("db", "migrate")
        cli("demo", "setup")
        first = saved(cli)
        other = Cli(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
        other.workdir.mkdir()
        other("db", "migrate")
        other("demo", "setup")
        assert saved(other)["console_password"] != first["console_password"]  # no fixed password

        (cli.workdir / "var" / "demo-keys.json").unlink()
        cli("demo", "setup")
        replaced = saved(cli)
        assert replaced["console_password"] != first["console_password"]
        assert signs_in(fresh_database_url, replaced["console_email"], replaced["console_password"])
        assert not signs_in(fresh_database_url, first["console_email"], first["console_password"])

    def test_a_keys_file_from_before_the_console_owner_keeps_its_keys_and_gains_the_sign_in(
        self, cli: Cli, fresh_database_url: str
    ) -> None:
        cli("db", "migrate")
        cli("demo", "setup")
        keys = {name: saved(cli)[name] for name in ("secret", "publishable")}
        (cli.workdir / "var" / "demo-keys.json").write_text(json.dumps(keys))
        output = cli("demo", "setup")
        kept = saved(cli)
        assert {name: kept[name] for name in keys} == keys
        assert re.search(rf"password\s+{re.escape(kept['console_password'])}", output)
        assert signs_in(fresh_database_url, kept["console_email"], kept["console_password"])
