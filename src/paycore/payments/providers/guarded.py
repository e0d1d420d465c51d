"""A provider behind its circuit breaker: every outbound call (create, status, refund) goes through
`provider:<name>`; while it is open they fail at once with `ProviderUnavailable` instead of each
waiting out a timeout. Webhook verification is local work and is not guarded. A provider's refusal
(`ProviderRequestRefused`: a bad key, a bad request) is the caller's trouble, not the provider's,
and does not count against the breaker."""

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
    VerifiedWebhook,
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
        self.credentials_model = provider.credentials_model
        self.secret_fields = provider.secret_fields
        self.webhook_secret_required = provider.webhook_secret_required

    async def check_ready(self, account: ProviderAccount) -> None:
        await self.inner.check_ready(account)

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        try:
            async with self.breaker.guard(_FAILURES):
                return await asyncio.wait_for(self.inner.create_payment(request), self.timeout_seconds)
        except CircuitOpen as exc:
            raise ProviderUnavailable(str(exc)) from None

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> VerifiedWebhook:
        # Not guarded: local work, except PayPal's online check, which has its own time limit.
        return await self.inner.verify_webhook(account, headers, body, now)

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        return self.inner.to_neutral(payload, livemode=livemode)

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        try:
            async with self.breaker.guard(_FAILURES):
                return await asyncio.wait_for(self.inner.settle(account, payment_ref), self.timeout_seconds)
        except CircuitOpen as exc:
            raise ProviderUnavailable(str(exc)) from None

    async def confirm(
        self, account: ProviderAccount, payment_ref: str, params: Mapping[str, Any]
    ) -> ProviderPaymentStatus:
        try:
            async with self.breaker.guard(_FAILURES):
                return await asyncio.wait_for(
                    self.inner.confirm(account, payment_ref, params), self.timeout_seconds
                )
        except CircuitOpen as exc:
            raise ProviderUnavailable(str(exc)) from None

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
