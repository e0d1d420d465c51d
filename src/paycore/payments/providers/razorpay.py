"""The Razorpay adapter: Orders API + Razorpay Checkout, webhooks signed with the webhook secret.

The flow. `create_payment` makes a Razorpay order (our attempt id as its `receipt`); the storefront
opens Razorpay Checkout with `client_data`; Checkout hands back `razorpay_order_id`,
`razorpay_payment_id` and `razorpay_signature`, which the storefront passes to
`POST /v1/checkout/{id}/confirm`. `confirm` checks that signature and then asks Razorpay's API.
The webhook (`payment.captured`, `order.paid`) stays authoritative; whichever arrives first moves
the order, the other is a no-op. The attempt's `provider_ref` is the Razorpay *order* id: one
order may see several payments (a failed card, then UPI), and only one of them can pay it.

Decisions (see docs/providers/razorpay.md):
- Orders have no idempotency key. Before creating one, `create_payment` asks for orders with our
  receipt (`GET /v1/orders?receipt=`, documented under "Fetch all orders") and reuses one. Two
  concurrent creates could still make two; that is harmless: both are unpaid, the attempt keeps
  the first reference stored, and the storefront only ever opens Checkout on that one.
- Refunds have no idempotency key either: `refund` lists the payment's refunds and reuses the one
  whose receipt (or `notes.paycore_refund`) is our refund id before creating another. paycore
  lets one caller at a time submit a refund, so list-then-create cannot race with itself.
- Capture is automatic (a dashboard setting): `payment.authorized` is only pending.
- A failed payment does not end the order: the customer may retry inside it, so `fetch_status`
  answers pending (never failed) until a payment is captured; the order expires on its own.
- Amounts are the currency's ISO minor units, passed through unchanged. For three-decimal
  currencies Razorpay wants the last digit 0; paycore never rounds money, so it refuses others.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from paycore.config import Settings
from paycore.money import Money, minor_unit_exponent
from paycore.payments.providers import razorpay_events
from paycore.payments.providers.base import (
    ConfirmationRejected,
    CredentialSource,
    NeutralEvent,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderCredentials,
    ProviderPaymentState,
    ProviderPaymentStatus,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundOutcome,
    RefundState,
    VerifiedWebhook,
    WebhookRejected,
)
from paycore.payments.providers.common import (
    ProviderHttp,
    credentials_for,
    parse_json_object,
    verify_in_either_mode,
)
from paycore.payments.providers.razorpay_api import (
    ORDER_ID,
    PAYMENT_ID,
    RazorpayApi,
    is_captured,
    money_of,
    text_of,
)
from paycore.payments.providers.razorpay_credentials import RazorpayCredentials
from paycore.payments.providers.razorpay_events import ATTEMPT_NOTE, EVENT_ID_KEY, REFUND_NOTE
from paycore.payments.providers.razorpay_signing import payment_signature_matches, webhook_signature_matches

SIGNATURE_HEADER = "x-razorpay-signature"
_REFUND_STATES = {
    "processed": RefundState.SUCCEEDED,
    "pending": RefundState.PENDING,
    "failed": RefundState.FAILED,
}


class RazorpayProvider:
    name = "razorpay"
    supports_livemode = True
    credentials_model: type[BaseModel] | None = RazorpayCredentials
    secret_fields: frozenset[str] = frozenset({"key_secret"})
    # Razorpay signs webhooks with a secret of their own, set in its dashboard: without it, refuse.
    webhook_secret_required = True

    def __init__(self, settings: Settings, credentials: CredentialSource, http: ProviderHttp) -> None:
        self._settings = settings
        self._credentials = credentials
        self._http = http

    async def _keys(self, account: ProviderAccount) -> tuple[ProviderCredentials, RazorpayApi]:
        """The account's keys (`ProviderNotConfigured` without them) and an API client using them."""
        found = await credentials_for(self._credentials, account, self.name)
        key_id, key_secret = found.require("key_id"), found.require("key_secret")
        return found, RazorpayApi(self._http, self._settings.razorpay_api_base, key_id, key_secret)

    async def check_ready(self, account: ProviderAccount) -> None:
        await self._keys(account)

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        amount = request.amount
        if minor_unit_exponent(amount.currency) == 3 and amount.amount % 10:
            raise ProviderRequestRefused(
                f"Razorpay takes {amount.currency} amounts in steps of 10 minor units; paycore does not round"
            )
        found, api = await self._keys(request.account)
        existing = sorted(await api.orders_with_receipt(request.attempt_id), key=_created_at)
        order = existing[0] if existing else await api.create_order(_order_body(request))
        order_id = text_of(order, "id")
        if not ORDER_ID.fullmatch(order_id) or money_of(order) != amount:
            # Paying an order for another amount would be paying the wrong sum: stop here.
            raise ProviderUnavailable("razorpay answered an order that does not match the request")
        return PaymentSession(
            provider_ref=order_id,
            redirect_url=None,
            client_data={
                "key_id": found.require("key_id"),
                "razorpay_order_id": order_id,
                "amount": amount.amount,
                "currency": amount.currency,
            },
        )

    async def verify_webhook(
        self,
        account: ProviderAccount,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,  # noqa: ARG002 (Razorpay signs no timestamp; replays are deduped by the inbox)
    ) -> VerifiedWebhook:
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("signature_missing", "the X-Razorpay-Signature header is missing")

        async def verify(credentials: ProviderCredentials) -> dict[str, Any]:
            if not webhook_signature_matches(credentials.webhook_secrets, body, signature):
                raise WebhookRejected("signature_mismatch", "the X-Razorpay-Signature does not match")
            return {}

        verified = await verify_in_either_mode(self._credentials, account, self.name, verify)
        payload = _event_payload(body)
        # The inbox id is derived from what the signature covers. Razorpay's `x-razorpay-event-id`
        # header is not signed: deduping on it let one signed body be stored (and applied) once
        # per invented header. Razorpay resends an event's exact body, so its hash names it.
        payload[EVENT_ID_KEY] = razorpay_events.signed_body_event_id(body)
        return VerifiedWebhook(payload=payload, livemode=verified.livemode)

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        return razorpay_events.to_neutral(payload, livemode=livemode)

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        return await self.fetch_status(account, payment_ref)  # nothing waits on us here

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        _, api = await self._keys(account)
        return await _order_status(api, payment_ref)

    async def confirm(
        self, account: ProviderAccount, payment_ref: str, params: Mapping[str, Any]
    ) -> ProviderPaymentStatus:
        order_id = _param(params, "razorpay_order_id")
        payment_id = _param(params, "razorpay_payment_id")
        signature = _param(params, "razorpay_signature")
        if order_id != payment_ref:
            raise ConfirmationRejected("the Razorpay order is not this order's")
        if not PAYMENT_ID.fullmatch(payment_id):
            raise ConfirmationRejected("razorpay_payment_id is not a Razorpay payment id")
        found, api = await self._keys(account)
        if not payment_signature_matches(found.require("key_secret"), order_id, payment_id, signature):
            raise ConfirmationRejected("the Razorpay signature does not verify")
        # The signature proves Razorpay saw this payment; what became of it, only its API says.
        payment = await api.payment(payment_id)
        if payment.get("order_id") != payment_ref:
            raise ConfirmationRejected("Razorpay says this payment belongs to another order")
        if is_captured(payment):
            return ProviderPaymentStatus(
                ProviderPaymentState.SUCCEEDED, money_of(payment), charge_ref=text_of(payment, "id")
            )
        return await _order_status(api, payment_ref)

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        _, api = await self._keys(account)
        captured = sorted(
            (payment for payment in await api.order_payments(payment_ref) if is_captured(payment)),
            key=_created_at,
        )
        if not captured:
            raise ProviderRequestRefused("the Razorpay order has no captured payment to refund")
        payment = captured[0]
        if money_of(payment).currency != amount.currency:
            raise ProviderRequestRefused("the refund's currency is not the payment's")
        payment_id = text_of(payment, "id")
        refund = await api.refund_with_receipt(payment_id, refund_id)
        if refund is None:
            refund = await api.create_refund(
                payment_id,
                {"amount": amount.amount, "receipt": refund_id, "notes": {REFUND_NOTE: refund_id}},
            )
        status = refund.get("status")
        state = (
            _REFUND_STATES.get(status, RefundState.PENDING)
            if isinstance(status, str)
            else RefundState.PENDING
        )
        return RefundOutcome(
            provider_ref=text_of(refund, "id"),
            state=state,
            failure_reason="Razorpay reports the refund failed" if state is RefundState.FAILED else None,
        )


async def _order_status(api: RazorpayApi, order_id: str) -> ProviderPaymentStatus:
    """Captured → succeeded (the first captured payment); the order `paid` → succeeded; else
    pending, failed payments included: the customer may still pay inside the same order."""
    payments = await api.order_payments(order_id)
    captured = sorted((payment for payment in payments if is_captured(payment)), key=_created_at)
    if captured:
        first = captured[0]
        return ProviderPaymentStatus(
            ProviderPaymentState.SUCCEEDED, money_of(first), charge_ref=text_of(first, "id")
        )
    order = await api.order(order_id)
    if order.get("status") == "paid":
        return ProviderPaymentStatus(ProviderPaymentState.SUCCEEDED, money_of(order, "amount_paid"))
    return ProviderPaymentStatus(ProviderPaymentState.PENDING, None)


def _order_body(request: PaymentRequest) -> dict[str, Any]:
    return {
        "amount": request.amount.amount,
        "currency": request.amount.currency,
        "receipt": request.attempt_id,
        "notes": {
            ATTEMPT_NOTE: request.attempt_id,
            "tenant": request.account.tenant_slug,
            "order": request.order_id,
        },
    }


def _event_payload(body: bytes) -> dict[str, Any]:
    payload = parse_json_object(body, "a Razorpay event")
    if payload.get("entity") != "event":
        raise WebhookRejected("malformed_body", "the body is not a Razorpay event")
    if not isinstance(payload.get("event"), str):
        raise WebhookRejected("malformed_body", "the body names no event type")
    return payload


def _param(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise ConfirmationRejected(
            "razorpay_order_id, razorpay_payment_id and razorpay_signature are required"
        )
    return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, found in headers.items():  # a plain dict from a caller that kept the sender's case
        if key.lower() == name:
            return found
    return None


def _created_at(entity: dict[str, Any]) -> int:
    created = entity.get("created_at")
    return created if isinstance(created, int) and not isinstance(created, bool) else 0
