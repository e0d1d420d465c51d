"""A provider behind its circuit breaker: every outbound call (create, status, refund) goes through
`provider:<name>`; while it is open they fail at once with `ProviderUnavailable` instead of each
waiting out a timeout. Webhook verification is local work and is not guarded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from paycore.circuit import CircuitBreaker, CircuitOpen
from paycore.money import Money
from paycore.payments.providers.base import (
    NeutralEvent,
    PaymentProvider,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderPaymentStatus,
    ProviderUnavailable,
    RefundOutcome,
)

_FAILURES = (ProviderUnavailable, TimeoutError)


class GuardedProvider:
    """The time limit is inside the breaker's guard, so timeouts count against the target."""

    def __init__(
        self, provider: PaymentProvider, breaker: CircuitBreaker, *, timeout_seconds: float = 10.0
    ) -> None:
        self.inner = provider
        self.breaker = breaker
        self.timeout_seconds = timeout_seconds
        self.name = provider.name
        self.supports_livemode = provider.supports_livemode

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        try:
            async with self.breaker.guard(_FAILURES):
                return await asyncio.wait_for(self.inner.create_payment(request), self.timeout_seconds)
        except CircuitOpen as exc:
            raise ProviderUnavailable(str(exc)) from None

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> dict[str, Any]:
        return await self.inner.verify_webhook(account, headers, body, now)

    def to_neutral(self, payload: dict[str, Any]) -> NeutralEvent:
        return self.inner.to_neutral(payload)

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        try:
            async with self.breaker.guard(_FAILURES):
                return await asyncio.wait_for(
                    self.inner.fetch_status(account, payment_ref), self.timeout_seconds
                )
        except CircuitOpen as exc:
            raise ProviderUnavailable(str(exc)) from None

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        try:
            async with self.breaker.guard(_FAILURES):
                return await asyncio.wait_for(
                    self.inner.refund(account, payment_ref, amount, refund_id), self.timeout_seconds
                )
        except CircuitOpen as exc:
            raise ProviderUnavailable(str(exc)) from None
