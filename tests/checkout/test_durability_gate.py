"""Live money only on a durable database: the gate in front of every live-mode checkout."""

from __future__ import annotations

import httpx
import pytest

from paycore.auth.models import KeyKind, KeyMode
from paycore.checkout.durability import require_durable_database
from paycore.db import Database
from paycore.errors import ServiceUnavailable
from tests.factories import make_api_key, make_tenant


async def live_storefront(db: Database) -> dict[str, str]:
    async with db.session() as session:
        tenant = await make_tenant(session)
        key = await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE, mode=KeyMode.LIVE)
    return {"Authorization": f"Bearer {key.plaintext}"}


class TestDurabilityGate:
    async def test_gate_is_closed_on_sqlite_and_open_on_postgresql(self, db: Database) -> None:
        if db.dialect_name == "sqlite":
            with pytest.raises(ServiceUnavailable) as closed:
                await require_durable_database(db)
            assert closed.value.code == "live_payments_unavailable"
            assert "PostgreSQL" in closed.value.message
        else:
            await require_durable_database(db)  # at head and answering: open

    async def test_live_checkout_is_refused_before_anything_is_written(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        headers = await live_storefront(db)
        response = await client.post(
            "/v1/checkout",
            json={"cart_id": "cart_missing", "customer": {"email": "live@example.com"}},
            headers=headers,
        )
        error = response.json()["error"]
        if db.dialect_name == "sqlite":
            assert (response.status_code, error["code"]) == (503, "live_payments_unavailable")
        else:
            # The gate is open on PostgreSQL, and the sandbox takes no live money.
            assert (response.status_code, error["code"]) == (400, "provider_test_mode_only")
