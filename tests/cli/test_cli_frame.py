"""The command line as a person meets it: help at once, every help screen clean, ids whole, and
every list readable by a script."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from paycore.cli import COMMANDS, app, load_command
from tests.backends import BACKENDS
from tests.cli.conftest import Cli

HEAVY = ("sqlalchemy", "fastapi", "stripe", "httpx", "paycore.app", "paycore.db")


def _every_command_path() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [()]
    for name in COMMANDS:
        paths.append((name,))
        command = load_command(name)
        paths += [(name, sub) for sub in getattr(command, "commands", {})]
    return paths


class TestHelp:
    def test_top_level_help_imports_no_command(self) -> None:
        probe = (
            "import sys\n"
            "sys.argv = ['paycore', '--help']\n"
            "from paycore.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
        )
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert "server-templates" in result.stdout  # every command is listed…
        assert result.stdout.strip().splitlines()[-1] == "[]"  # …and none of them was imported

    @pytest.mark.parametrize("name", list(COMMANDS))
    def test_the_listed_help_is_the_commands_own(self, name: str) -> None:
        own = " ".join((load_command(name).help or "").split())
        assert own.startswith(" ".join(COMMANDS[name][2].split()))

    @pytest.mark.parametrize("words", _every_command_path(), ids=lambda words: " ".join(words) or "paycore")
    def test_no_help_screen_shows_a_type_beside_a_flag(self, words: tuple[str, ...]) -> None:
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output
        assert "--install-completion" not in result.output

    def test_an_unknown_command_is_named(self) -> None:
        result = CliRunner().invoke(app, ["nosuch"])
        assert result.exit_code == 2
        assert "No such command 'nosuch'" in result.output


@pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)
class TestLists:
    def test_ids_are_whole_in_a_narrow_terminal(self, cli: Cli) -> None:
        cli("db", "migrate")
        cli("tenants", "create", "--slug", "narrow", "--name", "Narrow")
        created = cli.json("keys", "create", "--tenant", "narrow", "--mode", "test", "--kind", "secret")
        table = cli("keys", "list", "--tenant", "narrow", env={"COLUMNS": "60"})
        assert str(created["id"]) in table  # whole, so it can be pasted into `keys revoke`
        assert "…" not in table.split(str(created["id"]))[0].splitlines()[-1]

    def test_tenants_are_listed_with_their_standing(self, cli: Cli) -> None:
        cli("db", "migrate")
        made = cli.json("tenants", "create", "--slug", "listed", "--name", "Listed Shop")
        (row,) = cli.json("tenants", "list")["data"]  # type: ignore[misc]
        assert row["id"] == made["id"]
        assert (row["slug"], row["name"], row["status"]) == ("listed", "Listed Shop", "active")
        assert str(made["id"]) in cli("tenants", "list")

    @pytest.mark.parametrize("words", [("outbox", "list"), ("events", "list"), ("fulfillments", "list")])
    def test_every_list_speaks_json(self, cli: Cli, words: tuple[str, ...]) -> None:
        cli("db", "migrate")
        output = cli(*words, "--json")
        assert json.loads(output.strip().splitlines()[-1]) == {"data": []}


class TestPipedTables:
    def test_a_table_piped_elsewhere_is_printed_whole(self, capsys: pytest.CaptureFixture[str]) -> None:
        """However wide the console thought the terminal was when it was made (80 columns without
        COLUMNS), a table sent to a file or a program keeps every cell on one line."""
        from paycore.cli.common import print_rows

        error = "SMTP 554 mailbox unavailable for this address, permanently refused by the server"
        print_rows(
            [
                {
                    "id": "msg_0358vnog5KYYFjP29Z19UG",
                    "created": "2026-12-04T15:21:43+00:00",
                    "last_error": error,
                }
            ],
            as_json=False,
        )
        printed = capsys.readouterr().out
        assert "msg_0358vnog5KYYFjP29Z19UG" in printed
        assert error in printed
