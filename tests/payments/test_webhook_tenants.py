"""The tenant a webhook URL names, cached per process: found once, dropped on a tenant change."""

from __future__ import annotations

from paycore.db import Database
from paycore.payments.webhook_tenants import WebhookTenants
from tests.factories import make_tenant


class TestWebhookTenants:
    async def test_an_unknown_slug_is_not_remembered(self, db: Database) -> None:
        tenants = WebhookTenants()
        assert await tenants.by_slug(db, "opens-later") is None
        async with db.session() as session:
            tenant = await make_tenant(session, slug="opens-later")
        found = await tenants.by_slug(db, "opens-later")
        assert found is not None
        assert found.id == tenant.id

    async def test_a_tenant_change_drops_its_entry_and_no_other(self, db: Database) -> None:
        clock = [0.0]
        tenants = WebhookTenants(clock=lambda: clock[0])
        async with db.session() as session:
            first, second = await make_tenant(session), await make_tenant(session)
        await tenants.by_slug(db, first.slug)
        await tenants.by_slug(db, second.slug)
        tenants.drop(first.id)
        assert first.slug not in tenants._entries
        assert second.slug in tenants._entries
        tenants.drop(None)
        assert tenants._entries == {}

    async def test_an_entry_expires(self, db: Database) -> None:
        clock = [0.0]
        tenants = WebhookTenants(ttl=10, clock=lambda: clock[0])
        async with db.session() as session:
            tenant = await make_tenant(session)
        await tenants.by_slug(db, tenant.slug)
        clock[0] = 11
        assert tenants._entries[tenant.slug][0] < clock[0]
        assert (await tenants.by_slug(db, tenant.slug)) is not None
        assert tenants._entries[tenant.slug][0] == 21
