"""A newcomer's first run: the port they choose is where customers and webhooks go, a taken port
is one clear line with nothing started, and a public URL that leads elsewhere is said loudly."""

from __future__ import annotations

import json
import secrets
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import run_paycore
from tests.cli.test_server_commands import free_port, processes, start, wait_for_output, wait_until_healthy

__all__ = ["processes"]  # the fixture, used by name below


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {"PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}", "PAYCORE_ENV": "development"}
    assert run_paycore("db", "migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_paycore("demo", "setup", env=env, cwd=tmp_path).returncode == 0
    return env


def _demo_keys(tmp_path: Path) -> dict[str, str]:
    keys: dict[str, str] = json.loads((tmp_path / "var" / "demo-keys.json").read_text())
    return keys


class TestThePortFollows:
    def test_customers_and_sandbox_webhooks_go_to_the_port_paycore_listens_on(
        self, demo_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        port = free_port()  # not 8000, and no PAYCORE_PUBLIC_URL
        process = start(["run", "--port", str(port)], demo_env, tmp_path)
        processes.append(process)
        wait_until_healthy(port, process)
        api = f"http://127.0.0.1:{port}"
        keys = _demo_keys(tmp_path)
        secret = {"Authorization": f"Bearer {keys['secret']}"}
        publishable = {"Authorization": f"Bearer {keys['publishable']}"}
        product = httpx.post(
            f"{api}/v1/products",
            json={"name": "Course", "price": 4900, "currency": "EUR", "kind": "digital"},
            headers=secret,
        ).json()
        cart = httpx.post(
            f"{api}/v1/carts",
            json={"items": [{"product_id": product["id"], "quantity": 1}]},
            headers=publishable,
        ).json()
        bought = httpx.post(
            f"{api}/v1/checkout",
            json={"cart_id": cart["id"], "customer": {"email": "learner@example.com"}},
            headers=publishable,
        ).json()
        assert bought["payment"]["redirect_url"].startswith(f"{api}/sandbox/pay/")

        paid = httpx.post(f"{api}/sandbox/pay/{bought['payment']['id']}/confirm", json={"outcome": "succeed"})
        assert paid.status_code == 200
        status = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the sandbox's webhook reached this port
            status = httpx.get(f"{api}/v1/orders/{bought['order']['id']}", headers=secret).json()["status"]
            if status in ("paid", "fulfilled"):
                break
            time.sleep(0.2)
        assert status in ("paid", "fulfilled")


class TestATakenPort:
    def test_one_clear_line_and_nothing_started(self, demo_env: dict[str, str], tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run_paycore("run", "--port", str(port), env=demo_env, cwd=tmp_path)
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert f"cannot serve on 127.0.0.1:{port}: the port is already in use" in output
        assert "worker_started" not in output  # no worker sent webhooks to whoever owns the port
        assert "API + worker on" not in output  # no banner claimed the address
        assert "Traceback" not in output


class TestAPublicUrlThatLeadsElsewhere:
    def test_start_up_warns_loudly(
        self, demo_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        port, elsewhere = free_port(), free_port()
        env = {**demo_env, "PAYCORE_PUBLIC_URL": f"http://127.0.0.1:{elsewhere}"}
        process = start(["run", "--port", str(port)], env, tmp_path)
        processes.append(process)
        seen = wait_for_output(process, "public_url_does_not_reach_this_server", timeout=60)
        assert f"http://127.0.0.1:{elsewhere}" in seen

    def test_a_public_url_that_reaches_this_server_is_quiet(
        self, demo_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        port = free_port()
        env = {**demo_env, "PAYCORE_PUBLIC_URL": f"http://localhost:{port}"}
        process = start(["run", "--port", str(port)], env, tmp_path)
        processes.append(process)
        wait_until_healthy(port, process)
        time.sleep(1)  # the probe runs right after start-up; give it the time to (not) complain
        process.terminate()
        output, _ = process.communicate(timeout=30)
        assert "public_url_does_not_reach_this_server" not in output


class TestProductionOnSqliteAtStartUp:
    def test_start_up_says_live_payments_are_unavailable(
        self, tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        env = {
            "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            "PAYCORE_ENV": "production",
            "PAYCORE_CHECKOUT_TOKEN_SECRET": secrets.token_urlsafe(36),
        }
        assert run_paycore("db", "migrate", env=env, cwd=tmp_path).returncode == 0
        process = start(["serve", "--port", str(free_port())], env, tmp_path)
        processes.append(process)
        seen = wait_for_output(process, "live_payments_unavailable", timeout=60)
        assert "Live-mode payments need PostgreSQL" in seen


class TestTheDemoLeavesMakeRunsDataAlone:
    def test_demo_sells_in_a_throwaway_database(self, demo_env: dict[str, str], tmp_path: Path) -> None:
        before = (tmp_path / "run.db").read_bytes()
        keys_before = (tmp_path / "var" / "demo-keys.json").read_text()
        result = run_paycore("demo", env=demo_env, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "is fulfilled, 25.00 EUR paid" in result.stdout
        assert "throwaway database" in result.stdout
        assert (tmp_path / "run.db").read_bytes() == before
        assert (tmp_path / "var" / "demo-keys.json").read_text() == keys_before

    def test_database_url_keeps_what_the_demo_made(self, tmp_path: Path) -> None:
        kept = tmp_path / "kept.db"
        env = {
            "PAYCORE_ENV": "development",
            "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        }
        url = f"sqlite+aiosqlite:///{kept}"
        result = run_paycore("demo", "--database-url", url, env=env, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        with sqlite3.connect(kept) as connection:
            (orders,) = connection.execute("SELECT count(*) FROM orders").fetchone()
        assert orders == 1
