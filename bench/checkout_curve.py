"""Checkout against concurrency: paycore and its lean reference from 1 to 200 clients, drawn to a PNG.

For each level (1, 2, 4, 8, 16, 32, 64, 100, 200 closed-loop clients, short runs) measures
cart → checkout on the reference (`bench/reference_checkout.py`) and on `paycore serve`, both with
`--workers` processes, and draws POST /v1/checkout's p50/p95/p99 and the checkouts per second
against the number of clients into docs/performance-checkout.png (`--output`). Prints the table it
drew. Exits 1 only when more than 1% of some run's iterations failed.

    .venv/bin/python bench/checkout_curve.py [--levels 1,2,4,8,16,32,64,100,200] [--duration 4]
        [--workers 2] [--products 1] [--output docs/performance-checkout.png]
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from _support import bench_database, close_all, http_clients, percentile, run_main
from matplotlib.figure import Figure

from checkout import Measured, failed, measure, paycore_system, reference_system

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "performance-checkout.png"
STYLES = {"paycore": "-", "reference": "--"}
THROUGHPUT_COLOURS = {"paycore": "tab:blue", "reference": "tab:purple"}
COLOURS = {50: "tab:green", 95: "tab:orange", 99: "tab:red"}


@dataclass(frozen=True)
class Point:
    system: str
    clients: int
    rate: float
    p50: float
    p95: float
    p99: float
    server_ms: float

    @classmethod
    def of(cls, clients: int, measured: Measured) -> Point:
        values = sorted(measured.run.checkouts)
        p50, p95, p99 = (percentile(values, q) * 1000 for q in (50, 95, 99))
        return cls(
            measured.system, clients, measured.run.rate, p50, p95, p99, measured.server_ms_per_checkout
        )


def draw(points: list[Point], output: Path, *, workers: int, products: int) -> None:
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    latency, throughput = figure.subplots(1, 2)
    for system, style in STYLES.items():
        mine = [point for point in points if point.system == system]
        if not mine:
            continue
        clients = [point.clients for point in mine]
        for q, colour in COLOURS.items():
            values = [getattr(point, f"p{q}") for point in mine]
            latency.plot(
                clients, values, style, color=colour, marker="o", markersize=3, label=f"{system} p{q}"
            )
        rates = [point.rate for point in mine]
        throughput.plot(
            clients, rates, style, color=THROUGHPUT_COLOURS[system], marker="o", markersize=3, label=system
        )
    latency.axhline(500, color="grey", linewidth=0.8, linestyle=":", label="target p95 500 ms")
    levels = sorted({point.clients for point in points})
    for axes in (latency, throughput):
        axes.set_xscale("log")
        axes.set_xticks(levels, [str(level) for level in levels])
        axes.minorticks_off()
        axes.set_xlabel("concurrent clients (closed loop)")
        axes.grid(True, which="both", linewidth=0.3)
        axes.legend(fontsize=7)
    latency.set_yscale("log")
    latency.set_ylabel("POST /v1/checkout latency (ms)")
    latency.set_title("checkout latency")
    throughput.set_ylabel("cart → checkout per second")
    throughput.set_title("throughput")
    where = "one hot product" if products == 1 else f"{products} products"
    figure.suptitle(
        f"cart → checkout, {where}, {workers} worker(s) each, PostgreSQL, {os.cpu_count()} cores "
        "(paycore solid, lean reference dashed)"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)


async def main(arguments: argparse.Namespace) -> int:
    levels = [int(level) for level in arguments.levels.split(",")]
    pools = {"pool_size": arguments.pool_size, "max_overflow": arguments.max_overflow}
    points: list[Point] = []
    any_failed = False
    async with AsyncExitStack() as stack:
        reference = await stack.enter_async_context(
            reference_system(workers=arguments.workers, products=arguments.products, **pools)
        )
        url = await stack.enter_async_context(bench_database(None))
        paycore = await stack.enter_async_context(
            paycore_system(url, workers=arguments.workers, products=arguments.products, **pools)
        )
        print(
            f"{'clients':>7} {'system':<10} {'checkouts/s':>11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'server CPU ms':>13}"
        )
        for system in (reference, paycore):
            clients = http_clients(system.server.base_url, max(levels))
            stack.push_async_callback(close_all, clients)
            for level in levels:
                measured = await measure(
                    system, system.shop, clients[:level], warmup=arguments.warmup, duration=arguments.duration
                )
                point = Point.of(level, measured)
                points.append(point)
                print(
                    f"{level:>7} {point.system:<10} {point.rate:>11.1f} {point.p50:>8.1f} {point.p95:>8.1f} "
                    f"{point.p99:>8.1f} {point.server_ms:>13.1f}"
                )
                for error, count in measured.run.errors.most_common(3):
                    print(f"{'':>19}error x{count}: {error}")
                any_failed = any_failed or failed(measured.run)
    draw(points, arguments.output, workers=arguments.workers, products=arguments.products)
    print(f"drawn to {arguments.output}")
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # each line as it is measured, also into a file
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels", default="1,2,4,8,16,32,64,100,200", help="concurrent clients, comma-separated"
    )
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per level (default 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per level (default 1)")
    parser.add_argument("--products", type=int, default=1, help="products the carts rotate over (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="server processes, each system (default 2)")
    parser.add_argument("--pool-size", type=int, default=10, help="database pool per process (default 10)")
    parser.add_argument(
        "--max-overflow", type=int, default=10, help="database pool overflow per process (default 10)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the PNG to write")
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
