"""Round trips per request on the money path (PostgreSQL, counted at the driver, steady state).

The bounds are today's counts, so a change that adds a round trip fails here; lower them as the hot
paths get leaner. Issue 13's targets are in tests/support/round_trip_targets.py (not asserted yet:
the work that meets them is under way). bench/round_trips.py prints the same figures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from paycore.db import create_engine
from paycore.migrations import upgrade_to_head
from tests.conftest import drop_database_url, make_settings, new_database_url
from tests.support.money_path import OPERATIONS, Measured, measure_money_path
from tests.support.round_trip_targets import TARGETS

# Today's counts (BEGIN/COMMIT included); lower them as the hot paths get leaner. Before issue 13's
# work they were 8, 34, 40, 6 and 12.
CURRENT_BOUNDS = {
    "POST /v1/carts": 5,
    "POST /v1/checkout": 15,
    "paid webhook": 22,
    "duplicate webhook": 1,
    "unmatched webhook": 9,
}


@pytest.fixture(scope="module")
async def measured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Measured]]:
    """One steady-state round of the money path on a database of its own (real commits)."""
    url = await new_database_url("postgresql", Path(tmp_path_factory.mktemp("unused")))
    try:
        settings = make_settings(database_url=url, log_level="WARNING")
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()
        yield await measure_money_path(settings)
    finally:
        await drop_database_url(url)


class TestRoundTripsPerRequest:
    @pytest.mark.parametrize("operation", OPERATIONS)
    async def test_no_more_round_trips_than_today(
        self, measured: dict[str, Measured], operation: str
    ) -> None:
        trips = measured[operation].trips
        assert trips.total <= CURRENT_BOUNDS[operation], (
            f"{operation}: {trips.describe()} round trips, more than the {CURRENT_BOUNDS[operation]} allowed:\n"
            + "\n".join(trips.statements)
        )

    def test_every_target_is_for_an_operation_measured(self) -> None:
        assert set(TARGETS) <= set(OPERATIONS)


class TestTheCounter:
    @pytest.mark.parametrize("operation", OPERATIONS)
    async def test_counts_what_the_connection_writes(
        self, measured: dict[str, Measured], operation: str
    ) -> None:
        """Each counted protocol call is one Sync, Query or Flush on the socket, and nothing is missed."""
        assert measured[operation].trips.total == measured[operation].on_the_wire

    async def test_counts_transaction_boundaries(self, measured: dict[str, Measured]) -> None:
        statements = measured["POST /v1/checkout"].trips.statements
        # Beside autocommit sessions, a pooled connection's transaction names its isolation level.
        assert any(statement.startswith("query: BEGIN") for statement in statements)
        assert "query: COMMIT;" in statements

    async def test_steady_state_prepares_nothing(self, measured: dict[str, Measured]) -> None:
        """After the warm-up every statement is cached: a prepare here would be a cache miss per request."""
        assert all(result.trips.by_kind["prepare"] == 0 for result in measured.values())
