"""Round trips to the database per webhook, counted from the driver (issue 13): every statement,
SAVEPOINT and BEGIN/COMMIT a request sends.

A duplicate takes one (the issue's bound is 3). A paid webhook took 40 before issue 13 and takes
22 now; the issue's target is 10, not reached: the limit below guards what was won."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from tests.backends import BACKENDS
from tests.flows.conftest import LiveApp
from tests.flows.helpers import buy, create_product, open_shop, order
from tests.flows.test_concurrency import paid_event, signed_event

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)

PAID_LIMIT = 22
DUPLICATE_LIMIT = 3


@dataclass
class RoundTrips:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def counting(live: LiveApp) -> Iterator[RoundTrips]:
    """What the engine sends while the block runs. BEGIN and COMMIT are counted as the round
    trips they are on PostgreSQL (asyncpg sends each on its own)."""
    trips = RoundTrips()
    engine = live.database.engine.sync_engine

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        trips.statements.append(" ".join(sql.split())[:90])

    def sent(conn: Any, what: str) -> None:
        # In autocommit SQLAlchemy still opens its own transaction, but the driver sends nothing.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            trips.statements.append(what)

    def begin(conn: Any) -> None:
        sent(conn, "BEGIN")

    def commit(conn: Any) -> None:
        sent(conn, "COMMIT")

    def rollback(conn: Any) -> None:
        sent(conn, "ROLLBACK")

    listeners = [
        ("before_cursor_execute", statement),
        ("begin", begin),
        ("commit", commit),
        ("rollback", rollback),
    ]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield trips
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


class TestWebhookRoundTrips:
    async def test_a_paid_webhook_and_its_duplicate(self, live: LiveApp, fresh_database_url: str) -> None:
        shop = await open_shop(live.database)
        product = await create_product(live.client, shop, price=1999, stock=5)
        path = f"/webhooks/sandbox/{shop.slug}"
        # A first paid order warms the caches (tenant, prepared statements) as a running server has.
        first = await buy(live.client, shop, product["id"])
        body, headers = signed_event(live, shop.tenant_id, paid_event(first, event_id="sbevt_w", amount=1999))
        assert (await live.client.post(path, content=body, headers=headers)).status_code == 200

        bought = await buy(live.client, shop, product["id"], quantity=2)
        body, headers = signed_event(
            live, shop.tenant_id, paid_event(bought, event_id="sbevt_rt", amount=3998)
        )
        with counting(live) as paid:
            response = await live.client.post(path, content=body, headers=headers)
        assert response.json()["result"] == "applied"
        with counting(live) as duplicate:
            again = await live.client.post(path, content=body, headers=headers)
        assert again.json()["duplicate"] is True
        assert (await order(live.client, shop, bought["order"]["id"]))["status"] == "fulfilled"

        if fresh_database_url.startswith("postgresql"):  # SQLite has no network round trips
            assert paid.count <= PAID_LIMIT, paid.statements
            assert duplicate.count <= DUPLICATE_LIMIT, duplicate.statements
