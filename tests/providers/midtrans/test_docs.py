"""docs/providers/midtrans.md names only commands that exist (the docs test covers docs/*.md)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paycore.cli import app

DOC = Path(__file__).resolve().parents[3] / "docs" / "providers" / "midtrans.md"


def _commands() -> list[tuple[str, ...]]:
    text = DOC.read_text()
    lines = re.findall(r"`([^`\n]+)`", text)
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        lines += [line.lstrip("| ") for line in block.splitlines()]
    found = set()
    for line in lines:
        match = re.match(r"\s*(?:\$ )?paycore ([a-z][a-z -]*)", line)
        if match:
            found.add(tuple(word for word in shlex.split(match.group(1))[:2] if not word.startswith("-")))
    return sorted(found)


def test_the_doc_names_commands() -> None:
    assert ("providers", "set") in _commands()


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_every_command_named_exists(words: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"`paycore {' '.join(words)}` does not exist: {result.output}"
