"""Round trips to PostgreSQL per request on the money path, counted at the driver.

Runs paycore in-process (the ASGI app over httpx.ASGITransport, lifespan running, its own engine)
on a throwaway PostgreSQL database with the migrations applied, and counts every client → server
exchange of asyncpg (BEGIN, COMMIT, prepares and introspection included) for POST /v1/carts,
POST /v1/checkout with an Idempotency-Key, a paid sandbox webhook, the same webhook again and a
webhook matching no order — each after warm-up rounds, so statements are prepared as in steady
state. The count is checked against the Sync/Query/Flush messages on the wire. Targets (issue 13):
the checkout call ≤ 12 (cart creation is a request of its own, not counted in it), a paid webhook
≤ 10, a duplicate ≤ 3. Not timed: the figures do not depend on load. `--statements` lists each
round trip's statement. `--postgres-log FILE` also counts what PostgreSQL itself logged
(`log_statement = all` is set on the throwaway database; FILE is the server's log, readable
here): in steady state every round trip executes one statement, so the three counts agree.
Exits 1 when the driver and the wire (or the log) disagree.

    .venv/bin/python bench/round_trips.py [--warmup-rounds 2] [--statements]
        [--postgres-log /var/log/postgresql/postgresql-15-main.log]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support is shared with tests/perf

import asyncpg
from _support import ADMIN_DSN, paycore_settings, run_main, throwaway_postgres
from sqlalchemy.engine import make_url
from tests.support.money_path import OPERATIONS, measure_money_path
from tests.support.round_trip_targets import TARGETS

from paycore.db import create_engine
from paycore.migrations import upgrade_to_head


class PostgresLogFile:
    """Statements the server logged for one database since `mark()`: lines `…@<database> LOG:
    statement: …` (simple Query) and `… LOG:  execute …` (extended protocol), as the default Debian
    `log_line_prefix` (`%m [%p] %q%u@%d `) writes them."""

    def __init__(self, path: Path, database: str) -> None:
        self._path, self._database, self._offset = path, database, 0
        self._executed = re.compile(rf"@{re.escape(database)} LOG:  (statement|execute)")

    def mark(self) -> None:
        self._offset = self._path.stat().st_size

    async def executed_since_mark(self) -> int:
        await asyncio.sleep(0.3)  # the logger process writes shortly after
        with self._path.open("rb") as log:
            log.seek(self._offset)
            text = log.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if self._executed.search(line))


async def log_every_statement(database_url: str) -> None:
    name = make_url(database_url).database
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    finally:
        await admin.close()


async def main(arguments: argparse.Namespace) -> int:
    async with throwaway_postgres() as database_url:
        # Quiet: a request log line per request would bury the table.
        settings = paycore_settings(database_url).model_copy(update={"log_level": "WARNING"})
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()
        statement_log = None
        if arguments.postgres_log is not None:
            await log_every_statement(database_url)  # sessions opened from now on
            statement_log = PostgresLogFile(arguments.postgres_log, str(make_url(database_url).database))
        measured = await measure_money_path(
            settings, warmup_rounds=arguments.warmup_rounds, statement_log=statement_log
        )

    print(f"round trips per request, PostgreSQL, in-process, after {arguments.warmup_rounds} warm-up rounds")
    log_header = " pg log" if arguments.postgres_log else ""
    print(f"{'operation':<20} {'now':>4} {'wire':>5}{log_header} {'target':>7}  by protocol call")
    agree = True
    for operation in OPERATIONS:
        result = measured[operation]
        target = TARGETS.get(operation)
        verdict = "" if target is None else ("met" if result.trips.total <= target else "MISSED")
        target_text = "-" if target is None else f"<= {target}"
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.trips.by_kind.items()))
        logged = f" {result.logged_by_postgres:>6}" if result.logged_by_postgres is not None else ""
        print(
            f"{operation:<20} {result.trips.total:>4} {result.on_the_wire:>5}{logged} {target_text:>7}  "
            f"{verdict:<6} {kinds}"
        )
        agree = agree and result.on_the_wire == result.trips.total
        if result.logged_by_postgres is not None:
            agree = agree and result.logged_by_postgres == result.trips.total
        if arguments.statements:
            for statement in result.trips.statements:
                print(f"    {statement}")
    print("cart → checkout together: " + str(sum(measured[op].trips.total for op in OPERATIONS[:2])))
    if not agree:
        print("FAILED: the driver's count and the messages on the wire (or PostgreSQL's log) disagree")
    return 0 if agree else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup-rounds", type=int, default=2, help="unmeasured rounds first (default 2)")
    parser.add_argument("--statements", action="store_true", help="list the statement of each round trip")
    parser.add_argument(
        "--postgres-log", type=Path, default=None, help="the PostgreSQL server's log file, to count against"
    )
    arguments = parser.parse_args()
    run_main(lambda: main(arguments))
