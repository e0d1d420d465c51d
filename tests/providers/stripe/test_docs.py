"""docs/providers/stripe.md names only commands that exist, and the webhook URL paycore shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from paycore.cli import app, load_command

DOC = Path(__file__).resolve().parents[3] / "docs" / "providers" / "stripe.md"


def test_every_paycore_command_in_the_stripe_doc_exists() -> None:
    text = DOC.read_text()
    lines = re.findall(r"`([^`\n]+)`", text)
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        lines += block.splitlines()
    commands = set()
    for line in lines:
        for match in re.finditer(r"(?:^|\| )\s*paycore ([a-z][a-z -]*)", line):
            commands.add(tuple(word for word in shlex.split(match.group(1))[:2] if not word.startswith("-")))
    assert ("providers", "set") in commands
    for words in commands:
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"`paycore {' '.join(words)}` does not exist"


def test_the_options_the_doc_names_exist() -> None:
    providers: Any = load_command("providers")
    set_command = providers.commands["set"]
    options = {option for param in set_command.params for option in param.opts}
    for option in ("--credentials-file", "--webhook-secret", "--previous-valid-hours", "--mode", "--tenant"):
        assert option in DOC.read_text()
        assert option in options


def test_the_webhook_url_is_the_one_paycore_serves() -> None:
    assert "{PAYCORE_PUBLIC_URL}/webhooks/stripe/{tenant_slug}" in DOC.read_text()
