"""The PayPal adapter: Orders v2 with intent CAPTURE, refunds on the capture, webhooks verified
online (PayPal's verify endpoint) or offline (its certificate), by `paypal_webhook_verification`.

When money moves: the customer approves at PayPal, then the order is captured — on the customer's
return (`confirm`), or by reconciliation (`fetch_status` captures an APPROVED order), whichever
comes first. Every capture of an order carries the same `PayPal-Request-Id`, and PayPal's
ORDER_ALREADY_CAPTURED is answered by reading the order, so two captures take the money once.
`CHECKOUT.ORDER.APPROVED` is the third trigger: it maps to `PAYMENT_AUTHORIZED`, applied as
pending (webhooks are applied inside a database transaction, where no provider call may happen),
and the webhook receiver then captures through `confirm` once the event is stored
(`payments/capture.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from paycore.config import Settings
from paycore.money import Money
from paycore.payments.providers.base import (
    CredentialSource,
    NeutralEvent,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderCredentials,
    ProviderNotConfigured,
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
from paycore.payments.providers.paypal_api import PayPalApi, path_part
from paycore.payments.providers.paypal_certificates import CertificateFetcher
from paycore.payments.providers.paypal_shapes import (
    AmountNotRepresentable,
    event_to_neutral,
    existing_refund,
    link,
    order_approved,
    order_capture,
    order_to_status,
    refund_outcome,
    text,
    to_paypal_value,
)
from paycore.payments.providers.paypal_signing import (
    SignatureRefused,
    cert_url_allowed,
    check_transmission_time,
    signature_matches,
    signed_message,
)

NAME = "paypal"
_HEADERS = ("transmission-id", "transmission-time", "transmission-sig", "cert-url", "auth-algo")


class PayPalCredentials(BaseModel):
    """What `PUT /v1/providers/paypal` takes: the REST app's client id and secret. The webhook id
    goes in `webhook_secret`. Error messages name the rule, never the value."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=8, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    client_secret: SecretStr = Field(min_length=8, max_length=200)


class PayPalProvider:
    name = NAME
    supports_livemode = True
    credentials_model: type[BaseModel] | None = PayPalCredentials
    secret_fields: frozenset[str] = frozenset({"client_secret"})
    webhook_secret_required = True

    def __init__(self, settings: Settings, credentials: CredentialSource, http: ProviderHttp) -> None:
        self._settings = settings
        self._credentials = credentials
        self._api = PayPalApi(settings, http)
        self._certificates = CertificateFetcher(settings, http)

    async def check_ready(self, account: ProviderAccount) -> None:
        found = await credentials_for(self._credentials, account, NAME)
        found.require("client_id")
        found.require("client_secret")

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        credentials = await credentials_for(self._credentials, request.account, NAME)
        try:
            value = to_paypal_value(request.amount)
        except AmountNotRepresentable as exc:
            raise ProviderRequestRefused(str(exc)) from None
        back = request.return_url or self._settings.public_url
        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": request.order_id,
                    # Our attempt id: how a capture event finds its attempt before checkout has
                    # stored the order id. No invoice_id: PayPal refuses a repeated one per
                    # account, and two tenants (or test resets) may share an account.
                    "custom_id": request.attempt_id,
                    "description": f"Order {request.order_number}"[:127],
                    "amount": {"currency_code": request.amount.currency, "value": value},
                }
            ],
            "payment_source": {
                "paypal": {
                    "experience_context": {
                        "return_url": back,
                        "cancel_url": back,
                        # We capture on return without a review page: the button says "Pay Now".
                        "user_action": "PAY_NOW",
                    }
                }
            },
        }
        order = await self._api.call(
            credentials, "POST", "/v2/checkout/orders", json_body=body, request_id=request.attempt_id
        )
        order_id = text(order.get("id"))
        approve = link(order, "approve", "payer-action")
        if order_id is None or approve is None or not approve.startswith("https://"):
            raise ProviderUnavailable("PayPal answered an order without an id or approval link")
        return PaymentSession(
            provider_ref=order_id, redirect_url=approve, client_data={"paypal_order_id": order_id}
        )

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> VerifiedWebhook:
        fields = _paypal_headers(headers)
        payload = _parse_event(body)
        try:
            check_transmission_time(fields["transmission-time"], now)
        except SignatureRefused as exc:
            raise WebhookRejected(exc.reason, str(exc)) from None
        if not cert_url_allowed(fields["cert-url"]):
            # Checked online too: a URL PayPal would never send is not PayPal's request.
            raise WebhookRejected("cert_url_refused", "the certificate URL is not PayPal's")
        unavailable: list[ProviderUnavailable] = []

        async def verify(credentials: ProviderCredentials) -> dict[str, Any]:
            try:
                if self._settings.paypal_webhook_verification == "online":
                    await self._verify_online(credentials, fields, payload)
                else:
                    await self._verify_offline(credentials, fields, body, now)
            except (ProviderUnavailable, ProviderNotConfigured, ProviderRequestRefused) as exc:
                # This mode could not be checked now; the other mode may still verify it.
                unavailable.append(ProviderUnavailable(str(exc)))
                raise WebhookRejected("verification_unavailable", str(exc)) from None
            return payload

        try:
            return await verify_in_either_mode(self._credentials, account, NAME, verify)
        except WebhookRejected:
            if unavailable:
                # Not refused: unverifiable now. The receiver answers 503 and PayPal sends it again.
                raise unavailable[0] from None
            raise

    async def _verify_online(
        self, credentials: ProviderCredentials, fields: dict[str, str], payload: dict[str, Any]
    ) -> None:
        for webhook_id in credentials.webhook_secrets:
            answer = await self._api.verify_webhook_signature(
                credentials,
                {
                    "auth_algo": fields["auth-algo"],
                    "cert_url": fields["cert-url"],
                    "transmission_id": fields["transmission-id"],
                    "transmission_sig": fields["transmission-sig"],
                    "transmission_time": fields["transmission-time"],
                    "webhook_id": webhook_id,
                    "webhook_event": payload,
                },
            )
            if answer == "SUCCESS":
                return
        raise WebhookRejected("signature_mismatch", "PayPal did not verify the signature")

    async def _verify_offline(
        self, credentials: ProviderCredentials, fields: dict[str, str], body: bytes, now: datetime
    ) -> None:
        try:
            key = await self._certificates.signing_key(fields["cert-url"], now)
        except SignatureRefused as exc:
            raise WebhookRejected(exc.reason, str(exc)) from None
        for webhook_id in credentials.webhook_secrets:
            message = signed_message(fields["transmission-id"], fields["transmission-time"], webhook_id, body)
            if signature_matches(key, message, fields["transmission-sig"], fields["auth-algo"]):
                return
        raise WebhookRejected("signature_mismatch", "the signature does not match")

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        return event_to_neutral(payload, livemode=livemode)

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        credentials = await credentials_for(self._credentials, account, NAME)
        return order_to_status(await self._api.get_order(credentials, payment_ref))

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        """For an open attempt: an order the customer approved but nobody captured (the customer
        never came back, the webhook was lost) is captured now — the approval is their
        instruction to pay. Never called for an expired order: that one is only read."""
        credentials = await credentials_for(self._credentials, account, NAME)
        order = await self._api.get_order(credentials, payment_ref)
        if order_approved(order):
            order = await self._capture_or_read(credentials, payment_ref)
        return order_to_status(order)

    async def confirm(
        self,
        account: ProviderAccount,
        payment_ref: str,
        params: Mapping[str, Any],  # noqa: ARG002 (PayPal's return brings nothing we trust)
    ) -> ProviderPaymentStatus:
        return await self.capture(account, payment_ref)

    async def capture(self, account: ProviderAccount, order_id: str) -> ProviderPaymentStatus:
        """Capture an approved order (idempotent), then say what PayPal says of its payment. An
        order not approved yet (the customer canceled) answers pending and captures nothing."""
        credentials = await credentials_for(self._credentials, account, NAME)
        return order_to_status(await self._capture_or_read(credentials, order_id))

    async def _capture_or_read(self, credentials: ProviderCredentials, order_id: str) -> dict[str, Any]:
        status, order = await self._api.capture_order(credentials, order_id)
        if status == httpx.codes.UNPROCESSABLE_ENTITY or not order_capture(order):
            # Already captured (ORDER_ALREADY_CAPTURED), not approved, or declined for another
            # funding source: the order itself says where things stand.
            return await self._api.get_order(credentials, order_id)
        return order

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        credentials = await credentials_for(self._credentials, account, NAME)
        order = await self._api.get_order(credentials, payment_ref)
        capture_id = text(order_capture(order).get("id"))
        if order_to_status(order).state is not ProviderPaymentState.SUCCEEDED or capture_id is None:
            return RefundOutcome(
                provider_ref=None,
                state=RefundState.FAILED,
                failure_reason="the PayPal order has no completed capture",
            )
        made = existing_refund(order, refund_id)
        if made is not None:
            # Asked before and PayPal made it (our answer was lost): PayPal-Request-Id is kept
            # only 6 hours, so look rather than risk a second refund after a long outage.
            return refund_outcome(made)
        try:
            value = to_paypal_value(amount)
        except AmountNotRepresentable as exc:
            return RefundOutcome(provider_ref=None, state=RefundState.FAILED, failure_reason=str(exc))
        refund = await self._api.call(
            credentials,
            "POST",
            f"/v2/payments/captures/{path_part(capture_id)}/refund",
            json_body={
                "amount": {"currency_code": amount.currency, "value": value},
                # Our refund id, so the PAYMENT.CAPTURE.REFUNDED event finds our refund.
                "custom_id": refund_id,
                "invoice_id": refund_id,
            },
            request_id=refund_id,
        )
        return refund_outcome(refund)


def _paypal_headers(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = {key.lower(): value for key, value in headers.items()}
    fields: dict[str, str] = {}
    for name in _HEADERS:
        value = lowered.get(f"paypal-{name}", "").strip()
        if not value:
            raise WebhookRejected("signature_missing", f"the PAYPAL-{name.upper()} header is missing")
        fields[name] = value
    return fields


def _parse_event(body: bytes) -> dict[str, Any]:
    payload = parse_json_object(body, "a PayPal event")
    if not text(payload.get("id")) or not text(payload.get("event_type")):
        raise WebhookRejected("malformed_body", "the body is not a PayPal event")
    return payload
