"""Evidence from one mode never moves the other mode's money: an event signed by a tenant's test
account that names a live attempt (any attempt id can sit in a test PaymentIntent's metadata) is
unmatched, and the reverse too."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy import select

from paycore.config import Settings
from paycore.db import Database
from paycore.money import Money
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.models import EventResult
from paycore.payments.providers.base import NeutralEvent, NeutralKind
from tests.flows.helpers import Shop, buy, create_product, open_shop, order
from tests.payments.test_review_and_capture import apply, event_for


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def test_a_live_event_naming_a_test_attempt_is_unmatched(
    db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
) -> None:
    product = await create_product(client, shop, price=1500)
    bought = await buy(client, shop, product["id"])  # a test-mode order
    other_world = dataclasses.replace(
        event_for(bought, NeutralKind.PAYMENT_SUCCEEDED, "evt_live"), livemode=True
    )
    assert await apply(db, settings, shop, other_world) is EventResult.UNMATCHED
    assert (await order(client, shop, bought["order"]["id"]))["status"] == "pending_payment"

    same_world = event_for(bought, NeutralKind.PAYMENT_SUCCEEDED, "evt_test")
    assert await apply(db, settings, shop, same_world) is EventResult.APPLIED


async def test_a_refund_matching_nothing_is_alerted(db: Database, settings: Settings, shop: Shop) -> None:
    stray = NeutralEvent(
        provider_event_id="evt_stray_refund",
        type="refund.succeeded",
        kind=NeutralKind.REFUND_SUCCEEDED,
        livemode=False,
        payment_ref="sbpay_nobody",
        refund_ref="sbre_nobody",
        amount=Money(500, "EUR"),
    )
    assert await apply(db, settings, shop, stray) is EventResult.UNMATCHED
    async with db.session(write=False) as session:
        codes = list(
            await session.scalars(
                select(OutboxMessage.payload["code"].as_string()).where(
                    OutboxMessage.channel == OutboxChannel.OPS_ALERT
                )
            )
        )
    assert codes == ["unmatched_refund"]
