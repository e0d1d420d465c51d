from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest

from paycore.circuit import BreakerKey, Breakers, CircuitState
from paycore.money import Money
from paycore.payments.providers.base import (
    NeutralEvent,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderPaymentStatus,
    ProviderUnavailable,
    RefundOutcome,
)
from paycore.payments.providers.guarded import GuardedProvider

ACCOUNT = ProviderAccount(tenant_id="ten_x", tenant_slug="x", livemode=False)
REQUEST = PaymentRequest(
    account=ACCOUNT,
    attempt_id="pay_x",
    order_id="ord_x",
    order_number="N",
    amount=Money(100, "EUR"),
    customer_email="a@b.c",
)


class Hanging:
    """A provider that never answers in time."""

    name = "hanging"
    supports_livemode = True
    credentials_model = None
    secret_fields: frozenset[str] = frozenset()
    webhook_secret_required = False

    def __init__(self) -> None:
        self.calls = 0

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        self.calls += 1
        await asyncio.sleep(10)
        raise AssertionError("unreachable")

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> dict[str, Any]:
        return {}

    def to_neutral(self, payload: dict[str, Any]) -> NeutralEvent:
        raise NotImplementedError

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        raise NotImplementedError

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        raise NotImplementedError


class TestTimeoutsCountAgainstTheBreaker:
    async def test_timeouts_open_the_circuit(self) -> None:
        inner = Hanging()
        breakers = Breakers(failure_threshold=2, reset_seconds=60)
        guarded = GuardedProvider(inner, breakers, timeout_seconds=0.05)
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await guarded.create_payment(REQUEST)
        # The tenant's own breaker opens; the shared one waits for a second tenant to see it.
        account_breaker = BreakerKey.of_tenant("provider:hanging", ACCOUNT.tenant_id, livemode=False)
        assert breakers.get(account_breaker).state is CircuitState.OPEN
        with pytest.raises(ProviderUnavailable, match="open"):
            await guarded.create_payment(REQUEST)
        assert inner.calls == 2  # the open circuit did not call the provider again
