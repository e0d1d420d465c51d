"""Readiness: may this process take traffic? The database answers, its schema is at head, Redis
(when configured) answers, and the process is not shutting down.

Details of a failure go to the log; the response names the check and a short reason only, since
`/ready` is unauthenticated and must not describe the network behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import text

from paycore.db import Database
from paycore.logging import get_logger
from paycore.migrations import migration_status
from paycore.ops.metrics import READINESS_FAILURES

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


async def _timed(name: str, check: Awaitable[CheckResult], timeout_seconds: float) -> CheckResult:
    try:
        return await asyncio.wait_for(check, timeout_seconds)
    except TimeoutError:
        log.warning("readiness_check_timed_out", check=name, timeout_seconds=timeout_seconds)
        return CheckResult(name, False, f"no answer within {timeout_seconds:g}s")
    except Exception as exc:  # noqa: BLE001 (a failing dependency means "not ready", never a 500)
        log.warning("readiness_check_failed", check=name, error=repr(exc))
        return CheckResult(name, False, "unreachable")


async def _database(database: Database) -> CheckResult:
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return CheckResult("database", True, database.dialect_name)


async def _migrations(database: Database) -> CheckResult:
    status = await migration_status(database.engine)
    if status.ahead:
        # A newer release migrated the database first (expand, then contract): serve on.
        return CheckResult("migrations", True, f"at {status.current}, newer than this code's {status.head}")
    if status.at_head:
        return CheckResult("migrations", True, f"at head {status.head}")
    return CheckResult(
        "migrations",
        False,
        f"{len(status.pending)} pending ({', '.join(status.pending)}); run `paycore db migrate`",
    )


async def _redis(client: Redis) -> CheckResult:
    await client.ping()
    return CheckResult("redis", True, "answers")


async def run_readiness_checks(
    *, database: Database, redis: Redis | None, shutting_down: bool, timeout_seconds: float
) -> list[CheckResult]:
    if shutting_down:
        return [CheckResult("process", False, "shutting down")]
    database_check = await _timed("database", _database(database), timeout_seconds)
    checks = [database_check]
    if database_check.ok:
        checks.append(await _timed("migrations", _migrations(database), timeout_seconds))
    if redis is not None:
        checks.append(await _timed("redis", _redis(redis), timeout_seconds))
    for check in checks:
        if not check.ok:
            READINESS_FAILURES.labels(check=check.name).inc()
    return checks
