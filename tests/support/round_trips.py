"""Round trips to PostgreSQL, counted at the driver: every awaited call on an asyncpg connection's
protocol is one client → server exchange that ends in Sync (or a simple Query) and waits for
ReadyForQuery. Counting there, below SQLAlchemy, sees what statement-level events miss: BEGIN,
COMMIT, ROLLBACK, SAVEPOINTs, prepares of new statements and asyncpg's own type introspection.

Used by tests/perf/ (assertions on counts) and bench/round_trips.py (the printed figures). Not part
of paycore: the proxy costs CPU on every call, so the CPU benchmarks never install it.

    counter = RoundTripCounter()
    counter.install(engine)          # before the engine opens its first connection
    with counter.measure() as trips:
        ... one request ...
    trips.total, trips.by_kind, trips.statements

`WireSyncCounter` checks the counter against the wire: it counts the Sync, Query and Flush messages
the connections actually write to their sockets, each of which asyncpg then waits on.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# asyncpg.protocol.Protocol's coroutine methods; each sends its messages then a Sync (`query`: one
# simple-protocol Query; `prepare`: a Flush) and awaits the answer. `close` (Terminate) is not one.
ROUND_TRIP_METHODS = frozenset(
    {
        "prepare",
        "bind_execute",
        "bind_execute_many",
        "bind",
        "execute",
        "close_portal",
        "query",
        "copy_out",
        "copy_in",
        "close_statement",
    }
)


@dataclass
class RoundTrips:
    """What one `measure()` block saw: per protocol method, and the statement of each round trip."""

    by_kind: Counter[str] = field(default_factory=Counter)
    statements: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def describe(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.by_kind.items()))
        return f"{self.total} ({kinds})"


def _statement_of(method: str, args: tuple[Any, ...]) -> str:
    """A short label for the log of round trips: the SQL's first words."""
    sql: object = None
    if method in ("query", "prepare", "copy_out", "copy_in"):
        sql = args[1] if method == "prepare" and len(args) > 1 else args[0] if args else None
    elif args:
        sql = getattr(args[0], "query", None)  # a PreparedStatementState
    text = " ".join(str(sql).split()) if sql is not None else "?"
    return f"{method}: {text[:110]}"


class _CountingProtocol:
    """Stands in for an asyncpg Protocol: forwards everything, counts the awaited exchanges."""

    def __init__(self, inner: Any, counter: RoundTripCounter) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in ROUND_TRIP_METHODS:
            return attribute
        counter = self._counter

        async def counted(*args: Any, **kwargs: Any) -> Any:
            counter.record(name, args)
            return await attribute(*args, **kwargs)

        return counted


class RoundTripCounter:
    """Counts round trips on every connection an engine opens after `install`."""

    def __init__(self) -> None:
        self._current: list[RoundTrips] = []
        self.everything = RoundTrips()

    def install(self, engine: AsyncEngine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("round trips are counted on asyncpg (PostgreSQL) connections only")

        @event.listens_for(engine.sync_engine, "connect")
        def _wrap_protocol(dbapi_connection: Any, _: Any) -> None:
            wrap_connection(dbapi_connection.driver_connection, self)

    def record(self, method: str, args: tuple[Any, ...]) -> None:
        statement = _statement_of(method, args)
        for trips in (self.everything, *self._current):
            trips.by_kind[method] += 1
            trips.statements.append(statement)

    @contextmanager
    def measure(self) -> Iterator[RoundTrips]:
        """Round trips made (by any connection of the engine) while the block runs."""
        trips = RoundTrips()
        self._current.append(trips)
        try:
            yield trips
        finally:
            self._current.remove(trips)


def wrap_connection(asyncpg_connection: Any, counter: RoundTripCounter) -> None:
    """Count this (raw asyncpg) connection's round trips into `counter`."""
    if not isinstance(asyncpg_connection._protocol, _CountingProtocol):
        asyncpg_connection._protocol = _CountingProtocol(asyncpg_connection._protocol, counter)


# Frontend messages after which asyncpg waits for the server: Sync and a simple Query (answered
# with ReadyForQuery), and Flush, which ends asyncpg's Parse + Describe of a new statement.
_ROUND_TRIP_MESSAGES = frozenset({b"S", b"Q", b"H"})


class WireSyncCounter:
    """Counts the Sync, Query and Flush messages written on asyncpg connections' sockets (after start-up,
    every frontend message is a type byte and a 4-byte length that includes itself)."""

    def __init__(self) -> None:
        self.messages: Counter[bytes] = Counter()

    @property
    def round_trips(self) -> int:
        return sum(self.messages[kind] for kind in _ROUND_TRIP_MESSAGES)

    def install(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "connect")
        def _watch_socket(dbapi_connection: Any, _: Any) -> None:
            self.watch(dbapi_connection.driver_connection._transport)

    def watch(self, transport: Any) -> None:
        pending = bytearray()
        write, writelines = transport.write, transport.writelines

        def parse(data: Any) -> None:
            pending.extend(bytes(data))
            while len(pending) >= 5:
                (length,) = struct.unpack_from("!i", pending, 1)
                if len(pending) < 1 + length:
                    return
                self.messages[bytes(pending[:1])] += 1
                del pending[: 1 + length]

        def counted_write(data: Any) -> None:
            parse(data)
            write(data)

        def counted_writelines(buffers: Any) -> None:
            buffers = list(buffers)
            for data in buffers:
                parse(data)
            writelines(buffers)

        transport.write = counted_write
        transport.writelines = counted_writelines
