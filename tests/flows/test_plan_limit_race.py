"""The last slot of a plan goes to one of many concurrent creates, on a committed database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from paycore.audit.service import Actor
from paycore.catalog.models import Product
from paycore.platform.service import create_plan, set_subscription
from paycore.tenancy.models import SubscriptionStatus
from tests.backends import BACKENDS
from tests.flows.conftest import LiveApp
from tests.flows.helpers import open_shop

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


async def test_ten_concurrent_creates_fill_the_last_two_slots_exactly(live: LiveApp) -> None:
    shop = await open_shop(live.database)
    actor = Actor(name="test:race")
    async with live.database.session(write=True) as session:
        await create_plan(
            session,
            code="two",
            name="Two",
            max_products=2,
            max_orders_per_month=None,
            features=[],
            actor=actor,
        )
        await set_subscription(
            session,
            tenant_id=shop.tenant_id,
            plan_code="two",
            status=SubscriptionStatus.ACTIVE,
            current_period_end=None,
            actor=actor,
        )

    responses = await asyncio.gather(
        *(
            live.client.post(
                "/v1/products",
                json={"name": f"P{n}", "price": 100, "currency": "EUR", "kind": "digital"},
                headers=shop.secret,
            )
            for n in range(10)
        )
    )

    assert sorted(response.status_code for response in responses) == [201] * 2 + [403] * 8
    async with live.database.session(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 2
