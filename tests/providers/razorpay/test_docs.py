"""docs/providers/razorpay.md names only commands and options that exist."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from paycore.cli import app

DOC = Path(__file__).resolve().parents[3] / "docs" / "providers" / "razorpay.md"


def test_every_paycore_command_and_option_in_the_doc_exists() -> None:
    text = DOC.read_text()
    commands = re.findall(r"paycore (providers [a-z-]+)((?: --?[a-z-]+(?: [^\s\\`]+)?)*)", text)
    assert commands, "the doc names no paycore command"
    runner = CliRunner()
    for command, rest in commands:
        result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, f"`paycore {command}` does not exist"
        for option in re.findall(r"--[a-z-]+", rest):
            assert option in result.output, f"`paycore {command}` has no {option}"
    for option in re.findall(r"`(--[a-z-]+)", text):
        help_text = runner.invoke(app, ["providers", "set", "--help"], env={"COLUMNS": "200"}).output
        assert option in help_text, f"`paycore providers set` has no {option}"
