"""A provider behind its circuit breakers: every outbound call (create, status, refund) goes
through the provider's shared breaker `provider:<name>` and the calling tenant's own breaker for
that provider in that mode; while either is open the call fails at once with
`ProviderUnavailable` instead of waiting out a timeout.

Only what says the provider itself is in trouble (5xx, time-outs, connection errors) counts
against the shared breaker. A 429 (`ProviderThrottled`) is one account's trouble: it counts
against that tenant's breaker only, so one tenant's rate limit never refuses another's checkout
(nor its own checkouts in the other mode). A refusal (`ProviderRequestRefused`: a bad key, a bad
request) is the caller's trouble and counts against neither. Webhook verification is local work
and is not guarded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from paycore.circuit import BreakerKey, Breakers, CircuitOpen
from paycore.money import Money
from paycore.payments.providers.base import (
    NeutralEvent,
    PaymentProvider,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderPaymentStatus,
    ProviderThrottled,
    ProviderUnavailable,
    RefundOutcome,
    VerifiedWebhook,
)

T = TypeVar("T")

_FAILURES = (ProviderUnavailable, TimeoutError)
_ACCOUNT_ONLY_FAILURES = (ProviderThrottled,)


class GuardedProvider:
    """The time limit is inside the breakers' guard, so timeouts count against the provider."""

    def __init__(
        self, provider: PaymentProvider, breakers: Breakers, *, timeout_seconds: float = 10.0
    ) -> None:
        self.inner = provider
        self.breakers = breakers
        self.target = f"provider:{provider.name}"
        self.timeout_seconds = timeout_seconds
        self.name = provider.name
        self.supports_livemode = provider.supports_livemode
        self.credentials_model = provider.credentials_model
        self.secret_fields = provider.secret_fields
        self.webhook_secret_required = provider.webhook_secret_required
        breakers.shared(self.target)  # on the ops summary and /metrics from the start

    async def _call(self, account: ProviderAccount, call: Callable[[], Awaitable[T]]) -> T:
        keys = (
            BreakerKey.shared(self.target),
            BreakerKey.of_tenant(self.target, account.tenant_id, livemode=account.livemode),
        )
        try:
            async with self.breakers.guard(keys, _FAILURES, tenant_only=_ACCOUNT_ONLY_FAILURES):
                return await asyncio.wait_for(call(), self.timeout_seconds)
        except CircuitOpen as exc:
            raise ProviderUnavailable(str(exc)) from None

    async def check_ready(self, account: ProviderAccount) -> None:
        await self.inner.check_ready(account)

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        return await self._call(request.account, lambda: self.inner.create_payment(request))

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> VerifiedWebhook:
        # Not guarded: local work, except PayPal's online check, which has its own time limit.
        return await self.inner.verify_webhook(account, headers, body, now)

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        return self.inner.to_neutral(payload, livemode=livemode)

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        return await self._call(account, lambda: self.inner.settle(account, payment_ref))

    async def confirm(
        self, account: ProviderAccount, payment_ref: str, params: Mapping[str, Any]
    ) -> ProviderPaymentStatus:
        return await self._call(account, lambda: self.inner.confirm(account, payment_ref, params))

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        return await self._call(account, lambda: self.inner.fetch_status(account, payment_ref))

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        return await self._call(account, lambda: self.inner.refund(account, payment_ref, amount, refund_id))
