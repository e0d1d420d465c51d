"""Round trips to PostgreSQL per request on the money path, counted at the driver.

Runs paycore in-process (the ASGI app over httpx.ASGITransport, lifespan running, its own engine)
on a throwaway PostgreSQL database with the migrations applied, and counts every client → server
exchange of asyncpg (BEGIN, COMMIT, prepares and introspection included) for POST /v1/carts,
POST /v1/checkout with an Idempotency-Key, a paid sandbox webhook, the same webhook again and a
webhook matching no order — each after warm-up rounds, so statements are prepared as in steady
state. The count is checked against the Sync/Query/Flush messages on the wire. Targets (issue 13):
the checkout call ≤ 12 (cart creation is a request of its own, not counted in it), a paid webhook
≤ 10, a duplicate ≤ 3. Not timed: the figures do not depend on load. `--statements` lists each
round trip's statement. Exits 1 when the driver and the wire disagree.

    .venv/bin/python bench/round_trips.py [--warmup-rounds 2] [--statements]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support is shared with tests/perf

from _support import paycore_settings, run_main, throwaway_postgres
from tests.support.money_path import OPERATIONS, measure_money_path
from tests.support.round_trip_targets import TARGETS

from paycore.db import create_engine
from paycore.migrations import upgrade_to_head


async def main(arguments: argparse.Namespace) -> int:
    async with throwaway_postgres() as database_url:
        # Quiet: a request log line per request would bury the table.
        settings = paycore_settings(database_url).model_copy(update={"log_level": "WARNING"})
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()
        measured = await measure_money_path(settings, warmup_rounds=arguments.warmup_rounds)

    print(f"round trips per request, PostgreSQL, in-process, after {arguments.warmup_rounds} warm-up rounds")
    print(f"{'operation':<20} {'now':>4} {'wire':>5} {'target':>7}  by protocol call")
    agree = True
    for operation in OPERATIONS:
        result = measured[operation]
        target = TARGETS.get(operation)
        verdict = "" if target is None else ("met" if result.trips.total <= target else "MISSED")
        target_text = "-" if target is None else f"<= {target}"
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.trips.by_kind.items()))
        print(
            f"{operation:<20} {result.trips.total:>4} {result.on_the_wire:>5} {target_text:>7}  {verdict:<6} {kinds}"
        )
        agree = agree and result.on_the_wire == result.trips.total
        if arguments.statements:
            for statement in result.trips.statements:
                print(f"    {statement}")
    print("cart → checkout together: " + str(sum(measured[op].trips.total for op in OPERATIONS[:2])))
    if not agree:
        print("FAILED: the driver's count and the messages on the wire disagree")
    return 0 if agree else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup-rounds", type=int, default=2, help="unmeasured rounds first (default 2)")
    parser.add_argument("--statements", action="store_true", help="list the statement of each round trip")
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
