"""Open loop: orders (cart → checkout) arriving on a schedule, latency measured from the scheduled time.

A closed loop slows its clients down with the server and so hides queueing; here order i is due at
start + i/R whatever happened before, and its latency runs from that due time to its checkout's
answer, so time spent waiting behind earlier orders counts (the seed's promise: p95 < 500 ms with
100+ concurrent orders). Each order takes an idle keep-alive connection, or opens a new one when
all are busy: in-flight orders are never capped (connection errors are counted apart).

Runs the lean reference (`bench/reference_checkout.py`) and then `paycore serve`, each with
`--workers` processes on a throwaway PostgreSQL database, after a short closed-loop warm-up.
Prints p50/p95/p99 from the scheduled time, errors, the achieved rate, server CPU per order and the
targets: p95 < 500 ms, p99 < 1 s, no errors (MISSED when not). Exits 1 only when more than 1% of
the orders failed.

    .venv/bin/python bench/open_loop.py [--rate 100] [--duration 60] [--workers 2] [--products 1]
        [--only paycore|reference]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import httpx
from _support import bench_database, close_all, cpu_seconds, http_clients, percentile, run_main

from checkout import Shop, System, closed_loop, paycore_system, reference_system

TARGET_P95_MS = 500.0
TARGET_P99_MS = 1000.0


class Connections:
    """Keep-alive connections lent to one order at a time; a new one whenever all are busy.

    `ready` clients are made up front (making one costs the load generator a few milliseconds,
    which would show as orders started late)."""

    def __init__(self, base_url: str, *, ready: int) -> None:
        self._base_url = base_url
        self._idle = http_clients(base_url, ready)
        self.opened = list(self._idle)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._idle:
            client = self._idle.pop()
        else:
            client = http_clients(self._base_url, 1)[0]
            self.opened.append(client)
        try:
            yield client
        finally:
            self._idle.append(client)

    async def close(self) -> None:
        await close_all(self.opened)


@dataclass
class OpenRun:
    scheduled: int
    started: float
    latencies: list[float] = field(default_factory=list)
    # Orders given up on, at how long they had waited: counted in the percentiles as a lower bound.
    unanswered: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    connection_errors: int = 0
    last_answer: float = 0.0
    worst_lag: float = 0.0  # how late the load generator itself started an order

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def achieved_rate(self) -> float:
        elapsed = self.last_answer - self.started
        return len(self.latencies) / elapsed if elapsed > 0 else float("nan")


async def open_loop(
    shop: Shop, connections: Connections, *, rate: float, duration: float, grace: float
) -> OpenRun:
    """Start order i at start + i/rate, each in its own task; wait for every answer."""
    count = round(rate * duration)
    run = OpenRun(count, time.perf_counter() + 0.2)

    async def order(number: int, due: float) -> None:
        run.worst_lag = max(run.worst_lag, time.perf_counter() - due)
        try:
            async with connections.lend() as client:
                await shop.cart_then_checkout(client, number, 0)
        except httpx.TransportError as exc:
            run.connection_errors += 1
            run.errors[f"connection: {type(exc).__name__} {exc}"[:120]] += 1
            return
        except AssertionError as exc:
            run.errors[str(exc)] += 1
            return
        run.last_answer = time.perf_counter()
        run.latencies.append(run.last_answer - due)

    tasks = []
    for number in range(count):
        due = run.started + number / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(order(number, due)))
    # A server that fell far behind would take minutes to drain: what is still unanswered `grace`
    # seconds after the last arrival has failed the promise anyway.
    _, pending = await asyncio.wait(tasks, timeout=grace)
    given_up = time.perf_counter()
    for number, task in enumerate(tasks):
        if task in pending:
            task.cancel()
            run.unanswered.append(given_up - (run.started + number / rate))
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        run.errors[f"not answered {grace:g} s after the last arrival"] += len(pending)
    return run


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(system: System, run: OpenRun, *, rate: float, duration: float, workers: int, cpu: float) -> None:
    values = sorted(run.latencies + run.unanswered)
    p50, p95, p99, worst = (percentile(values, q) * 1000 for q in (50, 95, 99, 100))
    print(
        f"-- {system.name}: {rate:g} orders/s scheduled for {duration:g} s ({run.scheduled} orders), "
        f"{workers} worker(s)"
    )
    print(
        f"   achieved {run.achieved_rate:.1f} orders/s; {len(run.latencies)} ok, {run.failed} failed "
        f"({run.connection_errors} connection errors)"
    )
    print(
        f"   from the scheduled time to the checkout's answer: p50 {p50:.0f} ms  p95 {p95:.0f} ms  "
        f"p99 {p99:.0f} ms  max {worst:.0f} ms"
        + (f" ({len(run.unanswered)} unanswered counted at their wait so far)" if run.unanswered else "")
    )
    done = len(run.latencies) + run.failed
    per_order = cpu / done * 1000 if done else float("nan")
    print(
        f"   server CPU per order {per_order:.1f} ms; the load generator started orders up to {run.worst_lag * 1000:.0f} ms late"
    )
    print(
        f"   targets: p95 < {TARGET_P95_MS:.0f} ms: {verdict(p95 < TARGET_P95_MS)}; "
        f"p99 < {TARGET_P99_MS / 1000:.0f} s: {verdict(p99 < TARGET_P99_MS)}; "
        f"no errors: {verdict(run.failed == 0)}"
    )
    for error, count in run.errors.most_common(5):
        print(f"   error x{count}: {error}")


def allow_many_connections() -> None:
    """As many sockets as the hard limit allows: a collapsing server can have thousands in flight."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main(arguments: argparse.Namespace) -> int:
    allow_many_connections()
    names = ["reference", "paycore"] if arguments.only is None else [arguments.only]
    pools = {"pool_size": arguments.pool_size, "max_overflow": arguments.max_overflow}
    any_failed = False
    for name in names:
        async with AsyncExitStack() as stack:
            if name == "reference":
                system = await stack.enter_async_context(
                    reference_system(workers=arguments.workers, products=arguments.products, **pools)
                )
            else:
                url = await stack.enter_async_context(bench_database(None))
                system = await stack.enter_async_context(
                    paycore_system(url, workers=arguments.workers, products=arguments.products, **pools)
                )
            warm = http_clients(system.server.base_url, 8)
            stack.push_async_callback(close_all, warm)
            await closed_loop(warm, system.shop.cart_then_checkout, warmup=0, duration=arguments.warmup)
            connections = Connections(system.server.base_url, ready=arguments.connections)
            stack.push_async_callback(connections.close)
            before = cpu_seconds(system.server.pid)["server"]
            run = await open_loop(
                system.shop,
                connections,
                rate=arguments.rate,
                duration=arguments.duration,
                grace=arguments.grace,
            )
            cpu = cpu_seconds(system.server.pid)["server"] - before
            report(
                system,
                run,
                rate=arguments.rate,
                duration=arguments.duration,
                workers=arguments.workers,
                cpu=cpu,
            )
            print(f"   {len(connections.opened)} connections made ({arguments.connections} ready beforehand)")
            any_failed = any_failed or run.failed > 0.01 * run.scheduled
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # each line as it is measured, also into a file
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="orders started per second (default 100)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals (default 60)")
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds to wait for answers after the last arrival; later ones count as failed (default 30)",
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of closed-loop warm-up first (default 3)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=200,
        help="keep-alive connections made ready before the run; more are opened when all are busy (default 200)",
    )
    parser.add_argument("--products", type=int, default=1, help="products the orders rotate over (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="server processes, each system (default 2)")
    parser.add_argument("--pool-size", type=int, default=10, help="database pool per process (default 10)")
    parser.add_argument(
        "--max-overflow", type=int, default=10, help="database pool overflow per process (default 10)"
    )
    parser.add_argument(
        "--only", choices=["paycore", "reference"], default=None, help="measure one system only"
    )
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
