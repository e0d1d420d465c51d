"""What the server benchmarks share: a throwaway PostgreSQL database, the paycore command line, a
`paycore serve` subprocess, CPU accounting from /proc, percentiles. Not a benchmark itself (the
leading underscore keeps `make bench` from running it)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import secrets
import signal
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import asyncpg

# httpcore runs `import sniffio` each time it makes a lock, i.e. on every request. anyio no longer
# installs sniffio, so each of those imports fails only after searching sys.path: about a third of
# the load generator's CPU, taken from the server on a small machine. Record the miss once.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

import httpx

from paycore.config import Settings

ADMIN_DSN = os.environ.get("PAYCORE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Fixed so the benchmark can derive the same per-tenant keys as the server (sandbox webhook secret).
SERVER_SECRET = "Qm7vT2xK9pLw4RzB8nYc1HdJ6sFg3NeA5uVb0TiOkZ"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def throwaway_postgres(admin_dsn: str = ADMIN_DSN) -> AsyncIterator[str]:
    """A new, empty database on the local server for the length of the block (dropped even on error)."""
    name = f"paycore_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = admin_dsn.rpartition("/")
    try:
        yield f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    finally:
        admin = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def paycore_env(database_url: str, *, pool_size: int, max_overflow: int) -> dict[str, str]:
    """This environment without any PAYCORE_* of the caller's, plus the benchmark's settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAYCORE_")}
    return env | {
        "PAYCORE_DATABASE_URL": database_url,
        "PAYCORE_DATABASE_POOL_SIZE": str(pool_size),
        "PAYCORE_DATABASE_MAX_OVERFLOW": str(max_overflow),
        "PAYCORE_CHECKOUT_TOKEN_SECRET": SERVER_SECRET,
        "PAYCORE_ENV": "production",  # as deployed: JSON logs at INFO, production checks on
        # The limiter runs (its cost is part of the figure) but one load generator is one IP.
        "PAYCORE_RATE_LIMIT_STOREFRONT": "100000000/minute",
        "PAYCORE_RATE_LIMIT_MERCHANT_API": "100000000/minute",
        "PAYCORE_RATE_LIMIT_WEBHOOKS": "100000000/minute",
    }


def paycore_settings(database_url: str) -> Settings:
    """The settings the server runs with, as far as derived keys go (same server secret)."""
    return Settings(_env_file=None, database_url=database_url, checkout_token_secret=SERVER_SECRET)


async def paycore_cli(env: dict[str, str], *args: str) -> str:
    """Run `python -m paycore ARGS…` to completion and return its standard output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paycore",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"paycore {' '.join(args)} exited {process.returncode}:\n{err.decode()}")
    return out.decode()


async def test_mode_tenant(env: dict[str, str]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """A new tenant (CLI) and its test-mode `secret` and `publishable` keys, as Authorization headers."""
    slug = f"bench-{secrets.token_hex(3)}"
    tenant: dict[str, Any] = json.loads(
        await paycore_cli(env, "tenants", "create", "--slug", slug, "--name", "Bench", "--json")
    )
    keys = {}
    for kind in ("secret", "publishable"):
        created = await paycore_cli(
            env, "keys", "create", "--tenant", slug, "--mode", "test", "--kind", kind, "--json"
        )
        keys[kind] = {"Authorization": f"Bearer {json.loads(created)['key']}"}
    return tenant, keys


@asynccontextmanager
async def bench_database(url: str | None) -> AsyncIterator[str]:
    """A throwaway PostgreSQL database, a temporary SQLite file (`sqlite`), or the URL given as is."""
    if url is None:
        async with throwaway_postgres() as created:
            yield created
    elif url == "sqlite":
        with tempfile.TemporaryDirectory(prefix="paycore-bench-") as directory:
            yield f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
    else:
        yield url


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int
    log_path: Path


def http_clients(base_url: str, count: int, *, shared: bool = False) -> list[httpx.AsyncClient]:
    """`count` keep-alive connections: one client (pool) per connection, or one client pooling them all.

    httpcore looks at every pooled connection (a syscall each) to place each request, so one pool of
    64 costs the load generator ~3 times the CPU per request of 64 pools of one on this machine.
    """
    context = ssl.create_default_context()  # unused over http://, but made once instead of per client
    if shared:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        return [httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120, verify=context)]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return [
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120, verify=context) for _ in range(count)
    ]


async def close_all(clients: list[httpx.AsyncClient]) -> None:
    await asyncio.gather(*(client.aclose() for client in clients))


def _open_log(directory: str) -> IO[bytes]:
    return Path(directory, "server.log").open("wb")


@asynccontextmanager
async def paycore_server(env: dict[str, str], *, workers: int = 1) -> AsyncIterator[Server]:
    """`paycore serve` on a free port in its own session, ready on /health; stopped (group and all) after."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as directory:
        log = _open_log(directory)
        command = ["serve", "--port", str(port), "--workers", str(workers)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "paycore", *command, env=env, stdout=log, stderr=log, start_new_session=True
        )
        server = Server(f"http://127.0.0.1:{port}", process.pid, Path(log.name))
        try:
            await _wait_until_healthy(server, process)
            yield server
        finally:
            await _stop(process)
            log.close()


@asynccontextmanager
async def uvicorn_server(factory: str, env: dict[str, str], *, workers: int = 1) -> AsyncIterator[Server]:
    """`uvicorn --factory FACTORY` (a `module:function` under bench/) as `paycore serve` runs it:
    same loop and HTTP parser (uvicorn's auto choice), no access log, `workers` processes, on a
    free port in its own session; ready on /ready, stopped (group and all) after. For the lean
    references the benchmarks compare paycore with."""
    port = free_port()
    command = ["-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning", "--no-server-header"]
    command += ["--app-dir", str(Path(__file__).parent)]
    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as directory:
        log = _open_log(directory)
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=env, stdout=log, stderr=log, start_new_session=True
        )
        server = Server(f"http://127.0.0.1:{port}", process.pid, Path(log.name))
        try:
            await _wait_until_healthy(server, process)
            yield server
        finally:
            await _stop(process)
            log.close()


async def _wait_until_healthy(server: Server, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(
                    f"paycore serve exited {process.returncode}:\n{server.log_path.read_text()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("paycore serve did not become ready within 60 s")


async def _stop(process: asyncio.subprocess.Process) -> None:
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        if process.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)  # its own session: the group is this server and its workers
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)


def _proc_stats() -> dict[int, tuple[str, int, float]]:
    """pid → (command name, parent pid, CPU seconds) for every process we may read."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[str, int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        name, rest = raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()
        stats[int(entry)] = (name, int(rest[1]), (int(rest[11]) + int(rest[12])) / ticks)
    return stats


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU used so far by this process, the server (and each of its processes), and all of PostgreSQL."""
    stats = _proc_stats()
    tree, frontier = {server_pid}, [server_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (_, ppid, _) in stats.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    times = os.times()
    server = {f"pid {pid}": stats[pid][2] for pid in sorted(tree) if pid in stats}
    return {
        "client": times.user + times.system,
        "server": sum(server.values()),
        "postgres": sum(cpu for name, _, cpu in stats.values() if name == "postgres"),
        **(server if len(server) > 1 else {}),
    }


def postgres_cpu_seconds() -> float:
    """CPU used so far by all of PostgreSQL, including backends that have exited: the postmaster's
    children's times (added when it reaps them) plus every live postgres process's own."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes: dict[int, tuple[int, int, int]] = {}  # pid → (parent, own ticks, reaped children's ticks)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        if raw[raw.index("(") + 1 : raw.rindex(")")] != "postgres":
            continue
        rest = raw[raw.rindex(")") + 2 :].split()
        processes[int(entry)] = (int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14]))
    total = 0
    for parent, own, children in processes.values():
        total += own + (children if parent not in processes else 0)  # the postmaster has no postgres parent
    return total / ticks


class InProcessCpu:
    """CPU used over a block by this process and by all of PostgreSQL, for benchmarks that run
    paycore's code inside the benchmark process. Backends that exit during the block (a pool's
    overflow connections) count too, through the postmaster's children's times. Use as
    `async with InProcessCpu() as cpu: …`, then `cpu.line()`."""

    def __init__(self) -> None:
        self._own = self._postgres = self._wall = 0.0

    async def __aenter__(self) -> InProcessCpu:
        times = os.times()
        self._own = -(times.user + times.system)
        self._postgres = -postgres_cpu_seconds()
        self._wall = -time.perf_counter()
        return self

    async def __aexit__(self, *_: object) -> None:
        times = os.times()
        self._own += times.user + times.system
        self._postgres += postgres_cpu_seconds()
        self._wall += time.perf_counter()

    @property
    def used(self) -> dict[str, float]:
        return {"this process": self._own, "postgres": self._postgres}

    def line(self) -> str:
        used, wall = self.used, self._wall
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items())
        busy = sum(used.values()) / wall if wall > 0 else math.nan
        return f"CPU over {wall:.1f} s wall on {os.cpu_count()} cores: {parts} (total {busy:.2f} cores busy)"


def cpu_line(before: dict[str, float], after: dict[str, float], wall: float) -> str:
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    main = ("client", "server", "postgres")
    parts = ", ".join(f"{name} {used[name]:.1f} s" for name in main)
    line = f"CPU over {wall:.1f} s wall on {os.cpu_count()} cores: {parts}"
    line += f" (total {sum(used[name] for name in main) / wall:.2f} cores busy)"
    split = [f"{seconds:.1f}" for name, seconds in used.items() if name not in main]
    return line + (f"; server by process: {' + '.join(split)} s" if split else "")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def latency_summary(seconds: list[float]) -> str:
    values = sorted(seconds)
    p50, p95, p99 = (percentile(values, q) * 1000 for q in (50, 95, 99))
    mean = sum(values) / len(values) * 1000 if values else math.nan
    return f"p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms  mean {mean:7.1f} ms"


def run_main(main: Callable[[], Awaitable[int]]) -> None:
    """asyncio.run with SIGTERM treated like Ctrl-C: the task is cancelled so every cleanup runs."""

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await main()

    try:
        code = asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: server stopped and database dropped", file=sys.stderr)
        code = 130
    sys.exit(code)
