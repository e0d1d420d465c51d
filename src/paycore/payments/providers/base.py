"""The provider protocol and the neutral types every provider converts to and from.

No provider SDK type crosses this boundary: adapters return the dataclasses below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel

from paycore.money import Money


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """Whose account at the provider a call is made for. For a webhook the mode is not known until
    it is verified: `livemode` is then False and the adapter tries both modes' secrets."""

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
    # Where the customer returns after the provider's page (the storefront's), if it gave one.
    return_url: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentSession:
    """What the customer needs to pay: a page to go to, or data for the provider's widget."""

    provider_ref: str
    redirect_url: str | None
    client_data: dict[str, Any] = field(default_factory=dict)


class NeutralKind(StrEnum):
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_PENDING = "payment_pending"
    # The customer approved; the money moves when we capture (PayPal's CHECKOUT.ORDER.APPROVED).
    # Applied like pending, then the receiver asks the adapter to capture (`confirm`).
    PAYMENT_AUTHORIZED = "payment_authorized"
    # Held by the provider's fraud screening until the merchant decides in its dashboard
    # (Midtrans capture + challenge): not paid, not failed; ops are told.
    PAYMENT_NEEDS_REVIEW = "payment_needs_review"
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
    """What the provider's API says of a payment. `charge_ref` names the charge inside it where
    the provider has one (a PayPal capture, a Razorpay payment), for the records."""

    state: ProviderPaymentState
    amount: Money | None
    charge_ref: str | None = None


class RefundState(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    provider_ref: str | None
    state: RefundState
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """A webhook proven to come from the provider: its parsed body, and which of the tenant's
    accounts (test or live) signed it — the mode is learned from the secret that verified it."""

    payload: dict[str, Any]
    livemode: bool


@dataclass(frozen=True, slots=True)
class ProviderCredentials:
    """A tenant's keys at one provider in one mode, decrypted for the length of a call.
    `values` holds what the provider's credentials model names; `webhook_secrets` the secrets
    webhooks may be signed with (two during a rotation window). `repr` shows no values."""

    provider: str
    livemode: bool
    values: Mapping[str, str] = field(repr=False)
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)

    def require(self, name: str) -> str:
        value = self.values.get(name)
        if not value:
            raise ProviderNotConfigured(f"the {self.provider} credentials have no {name}")
        return value


class CredentialSource(Protocol):
    """Where adapters read a tenant's credentials (`paycore.provider_credentials.service`)."""

    async def get(self, tenant_id: str, provider: str, *, livemode: bool) -> ProviderCredentials | None: ...


class WebhookRejected(Exception):
    """A webhook that is not verified evidence. `reason` is a short code for metrics and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered with a server error; a retry may succeed."""


class ProviderThrottled(ProviderUnavailable):
    """The provider held back this account's call (429 rate limit; Stripe's 409 for a request
    with the same idempotency key in flight). A retry may succeed, but it says nothing of the
    provider's health: it counts against the tenant's own breaker only."""


class ProviderNotConfigured(Exception):
    """The tenant has not set this provider's credentials for this mode (or they are incomplete)."""


class ProviderRequestRefused(Exception):
    """The provider refused a request for a reason a retry will not change (bad key, bad input).
    The message is the provider's own explanation, without credentials."""


class ConfirmationRejected(Exception):
    """What the customer's browser sent back on return is not the provider's proof of payment."""


class PaymentProvider(Protocol):
    """One payment provider. Implementations hold no per-tenant state; every call names the account
    and the adapter reads that account's credentials itself.

    - `credentials_model` validates what `PUT /v1/providers/{name}` accepts (None: nothing to set);
      `secret_fields` are the fields shown only masked.
    - `check_ready` raises `ProviderNotConfigured` if the account cannot take a payment now.
    - `create_payment` is called outside any database transaction; it must be safe to retry with
      the same `attempt_id` (adapters pass it to the provider as the idempotency key).
    - `verify_webhook` refuses anything not signed by the provider (fail closed): with no webhook
      secret configured for a mode, that mode's webhooks are refused. It tries the tenant's live
      and test accounts and says which one verified; `to_neutral` turns the payload into a
      `NeutralEvent` and never raises for an event type it does not know (`IGNORED`).
    - `fetch_status` answers what the provider knows of a payment, and only reads.
    - `settle` finishes what the customer started where the provider waits for us (PayPal: capture
      an approved order), then answers like `fetch_status`; elsewhere it is `fetch_status`. Called
      for attempts still open — never for one whose order expired.
    - `confirm` handles the customer's return from the provider (`POST /v1/checkout/{id}/confirm`):
      it checks what the browser brought back, does what the provider needs then (PayPal: capture)
      and answers from the provider's API — never from the browser's word alone.
    - `refund` must be idempotent on `refund_id`.
    """

    name: str
    supports_livemode: bool
    credentials_model: type[BaseModel] | None
    secret_fields: frozenset[str]
    # False where the provider signs webhooks with the API key itself (Midtrans' server key).
    webhook_secret_required: bool

    async def check_ready(self, account: ProviderAccount) -> None: ...

    async def create_payment(self, request: PaymentRequest) -> PaymentSession: ...

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> VerifiedWebhook: ...

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent: ...

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus: ...

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus: ...

    async def confirm(
        self, account: ProviderAccount, payment_ref: str, params: Mapping[str, Any]
    ) -> ProviderPaymentStatus: ...

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome: ...
