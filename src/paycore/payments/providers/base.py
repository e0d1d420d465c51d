"""The provider protocol and the neutral types every provider converts to and from.

No provider SDK type crosses this boundary: adapters return the dataclasses below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from paycore.money import Money


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """Whose account at the provider a call is made for."""

    tenant_id: str
    tenant_slug: str
    livemode: bool


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    account: ProviderAccount
    attempt_id: str
    order_id: str
    order_number: str
    amount: Money
    customer_email: str


@dataclass(frozen=True, slots=True)
class PaymentSession:
    """What the customer needs to pay: a page to go to, or data for the provider's widget."""

    provider_ref: str
    redirect_url: str | None
    client_data: dict[str, Any] = field(default_factory=dict)


class NeutralKind(StrEnum):
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_PENDING = "payment_pending"
    PAYMENT_FAILED = "payment_failed"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_FAILED = "refund_failed"
    DISPUTE_OPENED = "dispute_opened"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class NeutralEvent:
    """A provider event in paycore's words. `provider_event_id` is the inbox's dedupe key."""

    provider_event_id: str
    type: str
    kind: NeutralKind
    livemode: bool
    payment_ref: str | None = None
    merchant_reference: str | None = None
    refund_ref: str | None = None
    amount: Money | None = None
    failure_reason: str | None = None


class ProviderPaymentState(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class ProviderPaymentStatus:
    state: ProviderPaymentState
    amount: Money | None


class RefundState(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    provider_ref: str | None
    state: RefundState
    failure_reason: str | None = None


class WebhookRejected(Exception):
    """A webhook that is not verified evidence. `reason` is a short code for metrics and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered with a server error; a retry may succeed."""


class PaymentProvider(Protocol):
    """One payment provider. Implementations hold no per-tenant state; every call names the account.

    - `create_payment` is called outside any database transaction; it must be safe to retry with
      the same `attempt_id` (adapters pass it to the provider as the idempotency key).
    - `verify_webhook` refuses anything not signed by the provider (fail closed) and returns the
      parsed payload; `to_neutral` turns that payload into a `NeutralEvent` and never raises for an
      event type it does not know (`IGNORED`).
    - `fetch_status` answers what the provider knows of a payment, for reconciliation.
    - `refund` must be idempotent on `refund_id`.
    """

    name: str
    supports_livemode: bool

    async def create_payment(self, request: PaymentRequest) -> PaymentSession: ...

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> dict[str, Any]: ...

    def to_neutral(self, payload: dict[str, Any]) -> NeutralEvent: ...

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus: ...

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome: ...
