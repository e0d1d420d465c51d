"""Docs are part of done: every setting is documented, and every command they name exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paycore.cli import app
from paycore.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"\| `(PAYCORE_[A-Z_]+)` \|", readme))
    assert documented == {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def _shell_lines(text: str) -> list[str]:
    """Inline code spans, and the lines of ```sh blocks."""
    lines = re.findall(r"`([^`\n]+)`", text)
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        lines += block.splitlines()
    return lines


def _commands_named_in_docs() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for doc in DOCS:
        for line in _shell_lines(doc.read_text()):
            match = re.match(r"\s*(?:\$ )?paycore ([a-z][a-z -]*)", line)
            if match:
                words = shlex.split(match.group(1))
                found.add(tuple(word for word in words[:2] if not word.startswith("-")))
    return found


@pytest.mark.parametrize("words", sorted(_commands_named_in_docs()), ids=" ".join)
def test_every_command_in_the_docs_exists(words: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"`paycore {' '.join(words)}` does not exist: {result.output}"


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, re.MULTILINE))
    named = set(re.findall(r"`make ([a-z]+)`", (ROOT / "README.md").read_text()))
    assert named
    assert named <= targets


def _runbook_commands() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for line in _shell_lines((ROOT / "docs" / "runbook.md").read_text()):
        match = re.match(r"\s*(?:\$ )?paycore ([a-z][a-z -]*)", line)
        if match:
            words = tuple(word for word in shlex.split(match.group(1))[:2] if not word.startswith("-"))
            if len(words) == 2:
                found.add(words)
    return found


@pytest.mark.parametrize("words", sorted(_runbook_commands()), ids=" ".join)
def test_every_runbook_command_is_run_by_a_test(words: tuple[str, ...]) -> None:
    """At 3 a.m. a command must do what the runbook says: each one is run somewhere in tests/."""
    call = re.compile(rf'"{re.escape(words[0])}",\s*"{re.escape(words[1])}"')
    tests = (path.read_text() for path in (ROOT / "tests").rglob("test_*.py"))
    assert any(call.search(text) for text in tests), f"no test runs `paycore {' '.join(words)}`"


def _relative_links(doc: Path) -> list[str]:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    return [link for link in links if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_relative_link_in_the_docs_resolves(doc: Path) -> None:
    missing = [link for link in _relative_links(doc) if not (doc.parent / link).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_design_lives_in_the_repository() -> None:
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    assert "](design.md)" in architecture
    design = (ROOT / "docs" / "design.md").read_text()
    for section in ("Promises", "Data model", "Order state machine", "The money path"):
        assert f". {section}" in design


def test_paycore_is_apache_2_licensed() -> None:
    import tomllib

    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
