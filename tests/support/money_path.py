"""The money path driven in-process, one request at a time, with the round trips of each request
counted at the driver: POST /v1/carts, POST /v1/checkout (with an Idempotency-Key), a paid sandbox
webhook, the same webhook again (a duplicate), and a webhook that matches no order.

Shared by tests/perf/ (upper bounds) and bench/round_trips.py (the printed figures). The app runs
with its lifespan, on its own engine (real BEGIN/COMMIT, not a test's savepoints), on a PostgreSQL
database the caller made and migrated. Each request is measured after warm-up rounds of the same
requests, so statements are prepared and cached as in a server's steady state.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy import text

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database, create_engine
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.signing import SIGNATURE_HEADER, sign
from tests.flows.helpers import Shop, create_product, open_shop
from tests.support.round_trips import RoundTripCounter, RoundTrips, WireSyncCounter

OPERATIONS = (
    "POST /v1/carts",
    "POST /v1/checkout",
    "paid webhook",
    "duplicate webhook",
    "unmatched webhook",
)


@dataclass(frozen=True)
class Measured:
    """One operation's round trips, by the driver counter and by the messages on the wire (and,
    when a `StatementLog` is given, the statements PostgreSQL itself logged)."""

    trips: RoundTrips
    on_the_wire: int
    logged_by_postgres: int | None = None


class StatementLog(Protocol):
    """PostgreSQL's own record of what it executed (bench/round_trips.py reads its log file)."""

    def mark(self) -> None: ...

    async def executed_since_mark(self) -> int: ...


def payment_event(payment: dict[str, Any], event_type: str = "payment.succeeded") -> bytes:
    """A sandbox event as the sandbox itself would send it (sandbox/service.py's `_event`)."""
    body = {
        "id": f"sbevt_{secrets.token_hex(8)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"payment": payment},
    }
    return json.dumps(body, separators=(",", ":")).encode()


class MoneyPath:
    """A shop with one product (plenty of stock) on an app whose engine counts round trips."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        database: Database,
        settings: Settings,
        shop: Shop,
        product: str,
        counters: tuple[RoundTripCounter, WireSyncCounter],
    ) -> None:
        self.client, self.database, self.shop, self.product = client, database, shop, product
        self.counter, self.wire = counters
        self.statement_log: StatementLog | None = None
        self._webhook_path = f"/webhooks/sandbox/{shop.slug}"
        self._secret = webhook_secret(settings, shop.tenant_id)

    async def _measure(self, operation: str, results: dict[str, Measured], request: Any) -> httpx.Response:
        before = self.wire.round_trips
        if self.statement_log is not None:
            self.statement_log.mark()
        with self.counter.measure() as trips:
            response: httpx.Response = await request
        logged = await self.statement_log.executed_since_mark() if self.statement_log is not None else None
        results[operation] = Measured(trips, self.wire.round_trips - before, logged)
        return response

    def _webhook(self, body: bytes) -> Any:
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
        }
        return self.client.post(self._webhook_path, content=body, headers=headers)

    async def one_round(self) -> dict[str, Measured]:
        """Each operation once, measured; raises AssertionError when one does not answer as expected."""
        results: dict[str, Measured] = {}
        item = {"product_id": self.product, "quantity": 1}
        cart = await self._measure(
            "POST /v1/carts",
            results,
            self.client.post("/v1/carts", json={"items": [item]}, headers=self.shop.publishable),
        )
        assert cart.status_code == 201, cart.text
        body = {"cart_id": cart.json()["id"], "customer": {"email": f"c{secrets.token_hex(4)}@example.com"}}
        headers = {**self.shop.publishable, "Idempotency-Key": secrets.token_hex(8)}
        checkout = await self._measure(
            "POST /v1/checkout", results, self.client.post("/v1/checkout", json=body, headers=headers)
        )
        assert checkout.status_code == 201, checkout.text
        attempt = checkout.json()["payment"]
        paid = payment_event(
            {
                "id": await self._sandbox_payment_id(attempt["id"]),
                "merchant_reference": attempt["id"],
                "amount": attempt["amount"],
                "currency": attempt["currency"],
                "status": "succeeded",
            }
        )
        applied = await self._measure("paid webhook", results, self._webhook(paid))
        assert applied.status_code == 200 and applied.json().get("result") == "applied", applied.text
        duplicate = await self._measure("duplicate webhook", results, self._webhook(paid))
        assert duplicate.status_code == 200 and duplicate.json().get("duplicate"), duplicate.text
        nobody = secrets.token_hex(6)
        unmatched_body = payment_event(
            {
                "id": f"sbpay_{nobody}",
                "merchant_reference": f"pay_{nobody}",
                "amount": 1234,
                "currency": "EUR",
                "status": "succeeded",
            }
        )
        unmatched = await self._measure("unmatched webhook", results, self._webhook(unmatched_body))
        assert unmatched.status_code == 200 and unmatched.json().get("result") == "unmatched", unmatched.text
        return results

    async def _sandbox_payment_id(self, attempt_id: str) -> str:
        async with self.database.session(write=False) as session:
            payment_id = await session.scalar(
                text("SELECT id FROM sandbox_payments WHERE merchant_reference = :attempt"),
                {"attempt": attempt_id},
            )
        assert isinstance(payment_id, str)
        return payment_id


@asynccontextmanager
async def money_path(settings: Settings) -> AsyncIterator[MoneyPath]:
    """The app on `settings.database_url` (PostgreSQL, migrated), with its lifespan running."""
    engine = create_engine(settings)
    database = Database(engine)
    # Installed before the first connection: every connection the engine opens is counted.
    counter, wire = RoundTripCounter(), WireSyncCounter()
    counter.install(engine)
    wire.install(engine)
    app = create_app(settings, database=database)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.public_url) as client,
        ):
            shop = await open_shop(database)
            product = await create_product(client, shop, stock=10**9)
            yield MoneyPath(client, database, settings, shop, product["id"], (counter, wire))
    finally:
        await engine.dispose()


async def measure_money_path(
    settings: Settings, *, warmup_rounds: int = 2, statement_log: StatementLog | None = None
) -> dict[str, Measured]:
    """Round trips of each operation in steady state: after `warmup_rounds` unmeasured rounds."""
    async with money_path(settings) as path:
        for _ in range(warmup_rounds):
            await path.one_round()
        path.statement_log = statement_log
        return await path.one_round()
