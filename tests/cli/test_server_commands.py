"""The long-running commands, in real child processes: start-up refusal, serving, clean stops."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import run_paycore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    env = {
        "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'paycore.db'}",
        "PAYCORE_ENV": "development",
    }
    result = run_paycore("db", "migrate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return env


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("PAYCORE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "paycore", *args],
        env={**base, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: `serve --workers N` children die with it
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def wait_until_healthy(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited early:\n{process.stdout.read() if process.stdout else ''}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def wait_for_output(process: subprocess.Popen[str], text: str, timeout: float = 20) -> str:
    """Read the child's output until `text` appears; returns what was read."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            seen.append(line)
            if text in line:
                return "".join(seen)
        assert process.poll() is None, "".join(seen)
    raise AssertionError(f"{text!r} not seen in:\n{''.join(seen)}")


def stop(process: subprocess.Popen[str], sig: signal.Signals, timeout: float = 15) -> tuple[int, str]:
    process.send_signal(sig)
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


class TestRefusesBadConfiguration:
    @pytest.mark.parametrize("command", ["serve", "worker", "run"])
    def test_production_without_secrets_exits_2_listing_each_problem(
        self, command: str, tmp_path: Path
    ) -> None:
        result = run_paycore(
            command, env={"PAYCORE_ENV": "production", "PAYCORE_CORS_ORIGINS": "*"}, cwd=tmp_path
        )
        assert result.returncode == 2
        assert "2 configuration problem(s)" in result.stderr
        assert "PAYCORE_CHECKOUT_TOKEN_SECRET: is required in production" in result.stderr
        assert "PAYCORE_CORS_ORIGINS: may not contain '*' in production" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout

    def test_module_entry_point_works(self, tmp_path: Path) -> None:
        result = run_paycore("--help", env={}, cwd=tmp_path)
        assert result.returncode == 0
        for command in ("serve", "worker", "run", "db", "tenants", "keys", "users"):
            assert command in result.stdout


class TestRun:
    def test_api_and_worker_serve_then_stop_cleanly(
        self, sqlite_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        port = free_port()
        process = start(["run", "--port", str(port)], sqlite_env, tmp_path)
        processes.append(process)
        wait_until_healthy(port, process)
        ready = httpx.get(f"http://127.0.0.1:{port}/ready")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        code, output = stop(process, signal.SIGINT)
        assert ready.status_code == 200
        assert 'paycore_http_requests_total{method="GET",route="/health",status="200"}' in metrics
        assert code == 0, output
        assert "worker_started" in output and "worker_stopped" in output


class TestWorker:
    def test_sigterm_stops_the_worker_with_exit_0(
        self, sqlite_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        process = start(["worker"], sqlite_env, tmp_path)
        processes.append(process)
        before = wait_for_output(process, "worker_started")
        started = time.monotonic()
        code, output = stop(process, signal.SIGTERM)
        assert code == 0, before + output
        assert time.monotonic() - started < 10
        assert "worker_stopped" in output


class TestServeWithManyProcesses:
    def test_metrics_add_up_across_processes(
        self, sqlite_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        port = free_port()
        process = start(["serve", "--port", str(port), "--workers", "2"], sqlite_env, tmp_path)
        processes.append(process)
        wait_until_healthy(port, process, timeout=30)
        with httpx.Client() as client:  # new connections spread over both processes
            for _ in range(20):
                client.get(f"http://127.0.0.1:{port}/health", headers={"Connection": "close"})
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        code, output = stop(process, signal.SIGTERM)
        match = re.search(
            r'paycore_http_requests_total\{method="GET",route="/health",status="200"\} (\d+)', metrics
        )
        assert match is not None, metrics[:2000]
        assert int(match.group(1)) >= 21  # every request counted, whichever process answered it
        assert code == 0, output


class TestDemo:
    def test_demo_sells_one_item_end_to_end(self, tmp_path: Path) -> None:
        env = {
            "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
            "PAYCORE_ENV": "development",
        }
        result = run_paycore("demo", env=env, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "is fulfilled, 25.00 EUR paid" in out
        for action in ("order.created", "payment_attempt.succeeded", "order.paid", "order.fulfilled"):
            assert action in out
        assert "6 webhook deliveries accepted" in out
        assert "on hand 9, reserved 0, available 9" in out
        assert "1 paid order(s), 25.00 EUR spent" in out
        assert "1 email, 3 merchant webhooks" in out


class TestRunDeliversEmail:
    def test_a_paid_order_s_email_reaches_the_smtp_server(
        self, tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        import json as jsonlib
        from email import message_from_bytes
        from email.message import Message

        from aiosmtpd.controller import Controller

        received: list[Message] = []

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                received.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
                return "250 OK"

        smtp_port, port = free_port(), free_port()
        controller = Controller(Handler(), hostname="127.0.0.1", port=smtp_port)
        controller.start()
        env = {
            "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
            "PAYCORE_ENV": "development",
            "PAYCORE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PAYCORE_SMTP_HOST": "127.0.0.1",
            "PAYCORE_SMTP_PORT": str(smtp_port),
            "PAYCORE_SMTP_SECURITY": "none",
        }
        try:
            assert run_paycore("db", "migrate", env=env, cwd=tmp_path).returncode == 0
            assert run_paycore("demo", "setup", env=env, cwd=tmp_path).returncode == 0
            keys = jsonlib.loads((tmp_path / "var" / "demo-keys.json").read_text())
            process = start(["run", "--port", str(port)], env, tmp_path)
            processes.append(process)
            wait_until_healthy(port, process)
            api = f"http://127.0.0.1:{port}"
            secret = {"Authorization": f"Bearer {keys['secret']}"}
            publishable = {"Authorization": f"Bearer {keys['publishable']}"}
            product = httpx.post(
                f"{api}/v1/products",
                json={"name": "Mug", "price": 1500, "currency": "EUR", "kind": "physical"},
                headers=secret,
            ).json()
            # Test-mode emails reach only addresses the shop has verified.
            verified = httpx.post(
                f"{api}/v1/test_email_recipients", json={"email": "mug.buyer@example.com"}, headers=secret
            )
            assert verified.status_code == 201, verified.text
            cart = httpx.post(
                f"{api}/v1/carts",
                json={"items": [{"product_id": product["id"], "quantity": 1}]},
                headers=publishable,
            ).json()
            bought = httpx.post(
                f"{api}/v1/checkout",
                json={"cart_id": cart["id"], "customer": {"email": "mug.buyer@example.com"}},
                headers=publishable,
            ).json()
            confirmed = httpx.post(
                f"{api}/sandbox/pay/{bought['payment']['id']}/confirm", json={"outcome": "succeed"}
            )
            assert confirmed.status_code == 200
            deadline = time.monotonic() + 30
            while not received and time.monotonic() < deadline:
                time.sleep(0.2)
            code, output = stop(process, signal.SIGINT)
        finally:
            controller.stop()
        assert code == 0, output
        (mail,) = received
        assert mail["To"] == "mug.buyer@example.com"
        assert bought["order"]["number"] in mail["Subject"]


class TestGracefulShutdown:
    def test_sigterm_turns_ready_503_while_still_serving_then_exits_0(
        self, sqlite_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        port = free_port()
        env = {**sqlite_env, "PAYCORE_SHUTDOWN_DRAIN_SECONDS": "3"}
        process = start(["serve", "--port", str(port)], env, tmp_path)
        processes.append(process)
        wait_until_healthy(port, process)
        assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200

        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        draining = httpx.get(f"http://127.0.0.1:{port}/ready")
        alive = httpx.get(f"http://127.0.0.1:{port}/health")
        assert (draining.status_code, alive.status_code) == (503, 200)  # told the balancer, still serving
        assert process.poll() is None

        output, _ = process.communicate(timeout=15)
        assert process.returncode == 0, output

    def test_a_request_in_flight_at_sigterm_completes_and_new_connections_are_refused(
        self, sqlite_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[str]]
    ) -> None:
        """Finding 17: a merchant's PATCH whose body is still arriving when SIGTERM comes (a slow
        client: no test-only slow route needed) is answered 200 after the server has stopped
        accepting connections; then the process exits 0."""
        created = run_paycore(
            "tenants",
            "create",
            "--slug",
            "drain-shop",
            "--name",
            "Drain",
            "--json",
            env=sqlite_env,
            cwd=tmp_path,
        )
        assert created.returncode == 0, created.stderr
        keyed = run_paycore(
            "keys",
            "create",
            "--tenant",
            "drain-shop",
            "--mode",
            "test",
            "--kind",
            "secret",
            "--json",
            env=sqlite_env,
            cwd=tmp_path,
        )
        assert keyed.returncode == 0, keyed.stderr
        key = json.loads([line for line in keyed.stdout.splitlines() if line.startswith("{")][-1])["key"]
        port = free_port()
        process = start(
            ["serve", "--port", str(port)], {**sqlite_env, "PAYCORE_SHUTDOWN_DRAIN_SECONDS": "1"}, tmp_path
        )
        processes.append(process)
        wait_until_healthy(port, process)
        auth = {"Authorization": f"Bearer {key}"}
        product = httpx.post(
            f"http://127.0.0.1:{port}/v1/products",
            json={"name": "Widget", "price": 2500, "currency": "EUR", "kind": "digital"},
            headers=auth,
        )
        assert product.status_code == 201, product.text

        body = json.dumps({"price": 2700}).encode()
        head = (
            f"PATCH /v1/products/{product.json()['id']} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=15) as in_flight:
            in_flight.sendall(head + body[:5])  # the request has begun; its body is not all here
            process.send_signal(signal.SIGTERM)
            wait_until_refused(port)  # drained: the listening socket is closed
            # The server now waits on what is in flight (and would cancel it if it did not).
            wait_for_output(process, "Waiting for connections to close")
            in_flight.sendall(body[5:])
            answer = read_response(in_flight)

        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 200 OK", answer
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["price"] == 2700
        output, _ = process.communicate(timeout=15)
        assert process.returncode == 0, output


def wait_until_refused(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    raise AssertionError("the server still accepts connections")


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (`Connection: close`)."""
    chunks: list[bytes] = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
