"""Concurrent requests to pay an unpaid order again open one attempt, on a committed database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from paycore.payments.models import PaymentAttempt
from tests.backends import BACKENDS
from tests.checkout.test_payment_attempts import decline, stock, storefront_retry
from tests.flows.conftest import LiveApp
from tests.flows.helpers import buy, create_product, open_shop


@pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)
class TestConcurrentRetries:
    async def test_five_concurrent_retries_open_one_attempt(self, live: LiveApp) -> None:
        shop = await open_shop(live.database)
        product = await create_product(live.client, shop, stock=2)
        bought = await buy(live.client, shop, product["id"])
        await decline(live.database, live.settings, live.client, bought["payment"]["id"])

        responses = await asyncio.gather(*(storefront_retry(live.client, shop, bought) for _ in range(5)))
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
        assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
            "payment_attempt_open"
        }
        async with live.database.session(write=False) as session:
            open_attempts = await session.scalar(
                select(func.count())
                .select_from(PaymentAttempt)
                .where(
                    PaymentAttempt.order_id == bought["order"]["id"],
                    PaymentAttempt.status.in_(["created", "requires_action"]),
                )
            )
        assert open_attempts == 1
        assert await stock(live.client, shop, product["id"]) == (2, 1)
