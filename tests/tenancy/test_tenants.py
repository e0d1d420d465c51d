from __future__ import annotations

import pytest
from sqlalchemy import func, select

from paycore.audit.models import AuditEntry
from paycore.db import Database
from paycore.errors import Conflict, NotFound, ValidationFailed
from paycore.tenancy.models import Plan, Subscription, SubscriptionStatus
from paycore.tenancy.service import DEFAULT_PLAN_CODE, get_tenant_by_slug, slug_problem
from tests.factories import make_tenant


class TestSlugRules:
    @pytest.mark.parametrize("slug", ["acme", "acme-shop-2", "a1b", "x" * 63])
    def test_good_slugs(self, slug: str) -> None:
        assert slug_problem(slug) is None

    @pytest.mark.parametrize(
        "slug", ["", "ab", "Acme", "-acme", "acme-", "ac me", "acme_shop", "a--b", "x" * 64]
    )
    def test_bad_slugs(self, slug: str) -> None:
        assert slug_problem(slug) is not None


class TestCreateTenant:
    async def test_tenant_gets_an_active_subscription_to_the_default_plan(self, db: Database) -> None:
        async with db.session() as session:
            first = await make_tenant(session)
            second = await make_tenant(session)
            subscriptions = (
                await session.scalars(
                    select(Subscription).where(Subscription.tenant_id.in_([first.id, second.id]))
                )
            ).all()
            plans = await session.scalar(
                select(func.count()).select_from(Plan).where(Plan.code == DEFAULT_PLAN_CODE)
            )
        assert len(subscriptions) == 2
        assert {sub.status for sub in subscriptions} == {SubscriptionStatus.ACTIVE}
        assert len({sub.plan_id for sub in subscriptions}) == 1
        assert plans == 1

    async def test_duplicate_slug_is_a_conflict_and_keeps_the_first(self, db: Database) -> None:
        async with db.session() as session:
            original = await make_tenant(session, slug="dupe-shop", name="First")
            with pytest.raises(Conflict) as caught:
                await make_tenant(session, slug="dupe-shop", name="Second")
            found = await get_tenant_by_slug(session, "dupe-shop")
        assert caught.value.code == "tenant_exists"
        assert found.id == original.id
        assert found.name == "First"

    async def test_invalid_slug_or_name_is_refused(self, db: Database) -> None:
        async with db.session() as session:
            with pytest.raises(ValidationFailed) as caught:
                await make_tenant(session, slug="Bad Slug")
            assert caught.value.param == "slug"
            with pytest.raises(ValidationFailed) as caught:
                await make_tenant(session, name="   ")
            assert caught.value.param == "name"

    async def test_creation_is_audited(self, db: Database) -> None:
        async with db.session() as session:
            tenant = await make_tenant(session, slug="audited-shop")
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.entity_id == tenant.id))
        assert entry is not None
        assert entry.action == "tenant.created"
        assert entry.after == {"slug": "audited-shop", "name": "Acme Shop", "plan": DEFAULT_PLAN_CODE}

    async def test_unknown_slug_is_not_found(self, db: Database) -> None:
        async with db.session(write=False) as session:
            with pytest.raises(NotFound):
                await get_tenant_by_slug(session, "nobody-here")
