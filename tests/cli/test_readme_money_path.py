"""The README, run from top to bottom on a fresh clone: paycore started the way `make run` starts it
(the Makefile's own recipe, in an empty directory, on a free port, PAYCORE_PUBLIC_URL unset), then
the shell blocks of "The money path in one minute" pasted into bash as a reader would — with only
`curl` and `python3` on the PATH — ending with a paid order. And the console `make run` announces
opens with the sign-in it prints."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import run_paycore
from tests.cli.test_server_commands import free_port, start, wait_for_output, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
README_PORT = "127.0.0.1:8000"  # where the README's commands expect `make run`


@dataclass
class MadeRun:
    """A paycore started as `make run` starts it, in a directory of its own."""

    directory: Path
    port: int
    output: str  # what the reader saw: every command's output up to "startup complete"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def saved(self) -> dict[str, str]:
        kept: dict[str, str] = json.loads((self.directory / "var" / "demo-keys.json").read_text())
        return kept


def make_run_recipe() -> list[list[str]]:
    """The commands of the Makefile's `run` target, without the `$(PAYCORE)` in front."""
    match = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match is not None, "the Makefile has no `run` target"
    commands = []
    for line in match.group(1).splitlines():
        words = shlex.split(line)
        assert words[0] == "$(PAYCORE)", f"`make run` runs more than paycore: {line.strip()}"
        commands.append(words[1:])
    return commands


@pytest.fixture(scope="class")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadeRun]:
    directory = tmp_path_factory.mktemp("fresh-clone")
    port = free_port()
    # Nothing but the port: the database, the keys file and the public URL are make run's defaults.
    env = {"PAYCORE_HTTP_PORT": str(port)}
    *setup, serve = make_run_recipe()
    assert serve == ["run"], f"`make run` should end by serving, not with {serve}"
    seen = []
    for command in setup:
        result = run_paycore(*command, env=env, cwd=directory, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        seen.append(result.stdout)
    process = start(serve, env, directory)
    try:
        seen.append(wait_for_output(process, "Application startup complete", timeout=60))
        wait_until_healthy(port, process)
        # Keep reading its log, so a full pipe never stalls the server mid-test.
        threading.Thread(target=process.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        yield MadeRun(directory=directory, port=port, output="".join(seen))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def money_path_script(port: int) -> str:
    """The README's money-path shell blocks, in order, with the port this test's server has."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## The money path in one minute\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert blocks, "the money path has no shell blocks"
    script = "\n".join(blocks)
    assert f"API=http://{README_PORT}\n" in script, "the README no longer sets API= as this test expects"
    return script.replace(README_PORT, f"127.0.0.1:{port}")


def readers_path(directory: Path) -> str:
    """A PATH with only what the README promises a reader needs: curl and python3 (and sleep)."""
    bin_dir = directory / "readers-bin"
    bin_dir.mkdir(exist_ok=True)
    tools = {"curl": shutil.which("curl"), "sleep": shutil.which("sleep"), "python3": sys.executable}
    for name, found in tools.items():
        assert found is not None, f"{name} is not installed"
        link = bin_dir / name
        if not link.exists():
            link.symlink_to(found)
    return str(bin_dir)


# Stricter than a reader's terminal: stop at the first command that fails, and count an HTTP error
# as a failure (curl -s alone exits 0 on a 4xx).
STRICT = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
"""


def orders_once_paid(made_run: MadeRun, secret: str) -> list[dict[str, Any]]:
    """The shop's orders, once its one order is paid by the sandbox's webhook (or after 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        listed = httpx.get(f"{made_run.api}/v1/orders", headers={"Authorization": f"Bearer {secret}"})
        assert listed.status_code == 200, listed.text
        orders: list[dict[str, Any]] = listed.json()["data"]
        if len(orders) != 1 or orders[0]["paid_at"] is not None or time.monotonic() > deadline:
            return orders
        time.sleep(0.2)


class TestTheReadmeOnAFreshClone:
    def test_make_run_prints_the_console_and_a_sign_in_that_opens_it(self, made_run: MadeRun) -> None:
        kept = made_run.saved()
        assert f"console {made_run.api}/admin/login" in made_run.output  # the server's banner
        assert f"console          {made_run.api}/admin/login" in made_run.output  # beside the sign-in
        assert re.search(rf"email\s+{re.escape(kept['console_email'])}\n", made_run.output)
        assert re.search(rf"password\s+{re.escape(kept['console_password'])}\n", made_run.output)

        with httpx.Client(base_url=made_run.api, follow_redirects=True) as browser:
            form = browser.get("/admin/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            signed_in = browser.post(
                "/admin/login",
                data={
                    "csrf_token": token.group(1),
                    "tenant": "demo",
                    "email": kept["console_email"],
                    "password": kept["console_password"],
                },
            )
            assert signed_in.status_code == 200 and signed_in.url.path == "/admin"  # followed 303
            assert kept["console_email"] in signed_in.text

    def test_the_money_path_runs_top_to_bottom_and_the_order_ends_paid(self, made_run: MadeRun) -> None:
        script = made_run.directory / "money-path.sh"
        script.write_text(STRICT + money_path_script(made_run.port))
        result = subprocess.run(
            ["/bin/bash", str(script)],
            cwd=made_run.directory,  # where `make run` keeps var/demo-keys.json
            env={"PATH": readers_path(made_run.directory), "HOME": str(made_run.directory)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        shown = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert result.returncode == 0, shown
        assert "command not found" not in result.stderr, shown  # e.g. uuidgen, jq
        assert "succeeded" in result.stdout.splitlines(), shown  # the sandbox took the payment

        (order,) = orders_once_paid(made_run, made_run.saved()["secret"])
        assert order["paid_at"] is not None, order
        assert order["status"] in ("paid", "fulfilled")
        assert (order["total"], order["currency"]) == (2500, "EUR")
        # The checkout really carried an Idempotency-Key (a missing tool would have dropped it).
        with contextlib.closing(sqlite3.connect(made_run.directory / "var" / "paycore.db")) as database:
            keyed = database.execute("SELECT method, path, state FROM idempotent_requests").fetchall()
        assert keyed == [("POST", "/v1/checkout", "done")]
