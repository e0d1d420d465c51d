from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paycore.cli import app


class Cli:
    """Runs `paycore` in-process against one database URL."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.env = {"PAYCORE_DATABASE_URL": database_url, "PAYCORE_ENV": "test"}
        self.workdir = workdir
        self._runner = CliRunner()

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, expect: int = 0, input: str | None = None
    ) -> str:
        cwd = Path.cwd()
        os.chdir(self.workdir)
        try:
            result = self._runner.invoke(
                app, list(args), env={**self.env, **(env or {})}, input=input, catch_exceptions=False
            )
        finally:
            os.chdir(cwd)
        output = result.stdout + (result.stderr or "")
        assert result.exit_code == expect, f"exit {result.exit_code}, wanted {expect}:\n{output}"
        return output

    def json(self, *args: str) -> dict[str, object]:
        output = self(*args, "--json")
        line = [line for line in output.splitlines() if line.startswith("{")][-1]
        loaded: dict[str, object] = json.loads(line)
        return loaded


@pytest.fixture
def cli(fresh_database_url: str, tmp_path: Path) -> Cli:
    return Cli(fresh_database_url, tmp_path)


def run_paycore(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """`python -m paycore …` in a child process, with only the given PAYCORE_* settings."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("PAYCORE_")}
    return subprocess.run(
        [sys.executable, "-m", "paycore", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
