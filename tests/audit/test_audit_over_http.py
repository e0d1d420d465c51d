"""Finding 17: an HTTP change leaves an audit row that says what it was before, who asked, from
where, with which client, and under which request id — in the transaction of the change."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from paycore.app import create_app
from paycore.audit.models import AuditEntry
from paycore.config import Settings
from paycore.db import Database
from tests.flows.helpers import create_product, open_shop

CALLER_ADDRESS = "203.0.113.7"
USER_AGENT = "merchant-backend/4.2 (+https://shop.example)"


class TestAuditOverHttp:
    async def test_a_product_change_records_before_after_ip_user_agent_and_request_id(
        self, db: Database, settings: Settings
    ) -> None:
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app, client=(CALLER_ADDRESS, 50123))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            shop = await open_shop(db)
            product = await create_product(client, shop, price=2500, name="Widget")
            response = await client.patch(
                f"/v1/products/{product['id']}",
                json={"price": 2700, "name": "Widget Pro"},
                headers={**shop.secret, "User-Agent": USER_AGENT, "X-Request-ID": "req-audit-probe-1"},
            )
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == "req-audit-probe-1"

        async with db.session(write=False) as session:
            (entry,) = await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.entity_id == product["id"], AuditEntry.action == "product.updated"
                )
            )
        assert entry.tenant_id == shop.tenant_id
        assert entry.actor.startswith("key:")
        assert entry.before is not None and entry.after is not None
        assert (entry.before["price"], entry.before["name"]) == (2500, "Widget")
        assert (entry.after["price"], entry.after["name"]) == (2700, "Widget Pro")
        assert entry.ip == CALLER_ADDRESS
        assert entry.user_agent == USER_AGENT
        assert entry.correlation_id == "req-audit-probe-1"

    async def test_a_refused_change_writes_no_audit_row(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        product = await create_product(client, shop)
        response = await client.patch(
            f"/v1/products/{product['id']}", json={"price": -1}, headers=shop.secret
        )
        assert response.status_code == 422
        async with db.session(write=False) as session:
            actions = list(
                await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == product["id"]))
            )
        assert "product.updated" not in actions
