"""`paycore db verify`: does this database keep the promises paycore builds on?

Each check proves one thing by doing it — a duplicate the inbox must refuse is inserted and refused,
two connections race for one claim — and cleans up after itself: writes happen in transactions that
are rolled back, or on rows named `verify-…` that are deleted at the end. Safe on production.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.checkout.durability import require_durable_database
from paycore.clock import utcnow
from paycore.db import Database
from paycore.errors import ServiceUnavailable
from paycore.idempotency.models import IdempotencyKey
from paycore.migrations import migration_status
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.models import PaymentEvent
from paycore.tenancy.models import Tenant
from paycore.worker.models import Lease

# The database's clock may differ from ours by this much before expiries and leases go wrong.
MAX_CLOCK_SKEW = timedelta(seconds=5)
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Universal", "Zulu"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool | None  # None: does not apply to this database
    detail: str


Check = Callable[[Database], Awaitable[CheckResult]]


async def check_connection(database: Database) -> CheckResult:
    async with database.engine.connect() as connection:
        if database.dialect_name == "postgresql":
            version = await connection.scalar(text("SHOW server_version"))
        else:
            version = await connection.scalar(text("SELECT sqlite_version()"))
    return CheckResult("connection", True, f"{database.dialect_name} {version}")


async def check_migrations(database: Database) -> CheckResult:
    status = await migration_status(database.engine)
    if status.ahead:
        return CheckResult("migrations at head", True, f"at {status.current}, newer than this code")
    if status.at_head:
        return CheckResult("migrations at head", True, f"at {status.current}")
    return CheckResult(
        "migrations at head", False, f"at {status.current}, head is {status.head}: run `paycore db migrate`"
    )


def _duplicates(tenant_id: str) -> dict[str, Callable[[], object]]:
    """One row per constraint the promise of exactly-once effects stands on."""
    now = utcnow()
    return {
        "payment_events(tenant, provider, event id)": lambda: PaymentEvent(
            tenant_id=tenant_id,
            livemode=False,
            provider="verify",
            provider_event_id="e1",
            type="verify",
            payload={},
            received_at=now,
            attempts=0,
        ),
        "outbox(tenant, dedupe key)": lambda: OutboxMessage(
            tenant_id=tenant_id,
            livemode=False,
            channel=OutboxChannel.EMAIL,
            topic="verify",
            dedupe_key="d1",
            payload={},
        ),
        "idempotent_requests(tenant, mode, API key, key)": lambda: IdempotencyKey(
            tenant_id=tenant_id,
            livemode=False,
            api_key_id="key_verify",
            key="k1",
            method="POST",
            path="/verify",
            request_hash="0" * 64,
        ),
    }


async def check_unique_constraints(database: Database) -> CheckResult:
    """The inbox, the outbox and idempotency keys refuse a duplicate: each row is inserted twice
    in a transaction that is rolled back at the end."""
    name = "unique constraints refuse duplicates"
    refused: list[str] = []
    async with database.engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection)
        try:
            tenant = Tenant(slug=f"verify-{secrets.token_hex(6)}", name="paycore db verify")
            session.add(tenant)
            await session.flush()
            for constraint, make in _duplicates(tenant.id).items():
                async with session.begin_nested():
                    session.add(make())
                try:
                    async with session.begin_nested():
                        session.add(make())
                except IntegrityError:
                    refused.append(constraint)
        finally:
            await session.close()
            await transaction.rollback()  # nothing of this is kept
    missing = [constraint for constraint in _duplicates("") if constraint not in refused]
    if missing:
        return CheckResult(name, False, "accepted a duplicate in " + ", ".join(missing))
    return CheckResult(name, True, f"{len(refused)} of {len(refused)} refused")


async def _with_lease_row(database: Database, work: Callable[[str], Awaitable[CheckResult]]) -> CheckResult:
    name = f"verify-{secrets.token_hex(6)}"
    now = utcnow()
    async with database.session(write=True) as session:
        session.add(Lease(name=name, holder="", until=now, acquired_at=now))
    try:
        return await work(name)
    finally:
        async with database.session(write=True) as session:
            await session.execute(delete(Lease).where(Lease.name == name))


async def check_claim_race(database: Database) -> CheckResult:
    """Two connections race to claim one row with a conditional UPDATE: exactly one wins."""

    async def race(name: str) -> CheckResult:
        async def claim(holder: str) -> bool:
            async with database.session(write=True) as session:
                result = await session.execute(
                    update(Lease)
                    .where(Lease.name == name, Lease.holder == "")
                    .values(holder=holder)
                    .execution_options(synchronize_session=False)
                )
                return bool(getattr(result, "rowcount", 0))

        winners = await asyncio.gather(claim("a"), claim("b"))
        ok = sum(winners) == 1
        return CheckResult("one winner for one claim", ok, f"{sum(winners)} of 2 connections won")

    return await _with_lease_row(database, race)


async def check_skip_locked(database: Database) -> CheckResult:
    if database.dialect_name != "postgresql":
        return CheckResult("SKIP LOCKED", None, "PostgreSQL only (SQLite claims in one writing transaction)")

    async def skip(name: str) -> CheckResult:
        async with database.engine.connect() as holder, database.engine.connect() as other:
            await holder.execute(select(Lease.name).where(Lease.name == name).with_for_update())
            seen = (
                await other.execute(
                    select(Lease.name).where(Lease.name == name).with_for_update(skip_locked=True)
                )
            ).all()
            await holder.rollback()
            await other.rollback()
        return CheckResult(
            "SKIP LOCKED", not seen, "a locked row is skipped" if not seen else "a locked row was returned"
        )

    return await _with_lease_row(database, skip)


async def check_durable_write(database: Database) -> CheckResult:
    """A committed write is read back by a brand-new connection."""

    async def read_back(name: str) -> CheckResult:
        async with database.engine.connect() as fresh:
            found = await fresh.scalar(select(Lease.name).where(Lease.name == name))
        return CheckResult(
            "a write survives a new connection", found == name, "read back" if found else "not found"
        )

    return await _with_lease_row(database, read_back)


async def check_clock(database: Database) -> CheckResult:
    """Timestamps are stored in UTC and the database's clock agrees with ours."""
    async with database.engine.connect() as connection:
        if database.dialect_name == "postgresql":
            zone = await connection.scalar(text("SHOW TimeZone"))
            theirs = await connection.scalar(text("SELECT now()"))
        else:
            zone, theirs = "UTC", None  # SQLite has no clock of its own: paycore writes UTC
    if theirs is None:
        return CheckResult("time zone is UTC", True, "SQLite: paycore stores UTC")
    skew = abs(theirs - utcnow())
    ok = skew <= MAX_CLOCK_SKEW and str(zone) in _UTC_NAMES
    return CheckResult(
        "time zone is UTC", ok, f"session time zone {zone}, clock {skew.total_seconds():.1f}s from ours"
    )


async def check_durability_gate(database: Database) -> CheckResult:
    if database.dialect_name != "postgresql":
        return CheckResult("durability gate", None, "SQLite: test-mode payments only")
    try:
        await require_durable_database(database)
    except ServiceUnavailable as exc:
        return CheckResult("durability gate", False, exc.message)
    return CheckResult("durability gate", True, "live payments may run")


CHECKS: tuple[Check, ...] = (
    check_connection,
    check_migrations,
    check_unique_constraints,
    check_claim_race,
    check_skip_locked,
    check_durable_write,
    check_clock,
    check_durability_gate,
)


async def verify_database(database: Database) -> list[CheckResult]:
    """Run every check; a check that raises is a failed check, not a crash."""
    results: list[CheckResult] = []
    for check in CHECKS:
        try:
            results.append(await check(database))
        except Exception as exc:  # noqa: BLE001 (one broken check must not hide the others)
            name = (check.__doc__ or check.__name__).split("\n")[0].removeprefix("check_")
            results.append(
                CheckResult(
                    check.__name__.removeprefix("check_"), False, f"{type(exc).__name__}: {exc}"[:300]
                )
            )
            del name
    return results
