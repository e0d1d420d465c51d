"""The Stripe adapter: PaymentIntents, confirmed in the browser by Stripe Elements.

Why PaymentIntents and not Checkout Sessions: the customer stays on the merchant's storefront
(Stripe Elements collects the card with the PaymentIntent's `client_secret`, 3-D Secure included),
and every state paycore acts on is a `payment_intent.*` event or a PaymentIntent read. So
`create_payment` answers no redirect URL, only `client_data` = the client secret and the account's
publishable key; `confirm` (after Elements' `confirmPayment`) is a hint to read the PaymentIntent.

All API calls go through the official SDK (`stripe.StripeClient`, async), made per call with that
account's key, its HTTP through paycore's pooled client (`stripe_sdk`). Idempotency keys are our
own ids (the attempt for a PaymentIntent, the refund for a Refund), so a retry — ours or the
SDK's — never makes a second one. Webhooks are verified by `stripe_signing` (the SDK's maths,
stricter on time) and mapped by `stripe_events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

import stripe
from pydantic import BaseModel

from paycore.config import Settings
from paycore.money import Money
from paycore.payments.providers import stripe_events
from paycore.payments.providers.base import (
    CredentialSource,
    NeutralEvent,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderCredentials,
    ProviderPaymentStatus,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundOutcome,
    VerifiedWebhook,
    WebhookRejected,
)
from paycore.payments.providers.common import (
    ProviderHttp,
    credentials_for,
    parse_json_object,
    verify_in_either_mode,
)
from paycore.payments.providers.stripe_credentials import StripeCredentials
from paycore.payments.providers.stripe_events import ATTEMPT_KEY, REFUND_KEY
from paycore.payments.providers.stripe_sdk import PaycoreHttpClient, call_stripe
from paycore.payments.providers.stripe_signing import SIGNATURE_HEADER, SignatureError, verify

# Where Stripe's amount unit is not the ISO 4217 minor unit paycore keeps (Stripe: ISK is sent
# as two decimals, MGA and UGX as zero), or Stripe takes no payments at all (IQD, LYD). Refused
# rather than converted: a wrong factor would charge 100 times too much or too little.
_UNSUPPORTED_CURRENCIES = frozenset({"ISK", "MGA", "UGX", "IQD", "LYD"})
# Three-decimal currencies: Stripe wants the last digit 0.
_THREE_DECIMALS = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
_PAGE = 100


def stripe_amount(amount: Money) -> int:
    if amount.currency in _UNSUPPORTED_CURRENCIES:
        raise ProviderRequestRefused(f"stripe: paycore does not take {amount.currency} through Stripe")
    if amount.currency in _THREE_DECIMALS and amount.amount % 10:
        raise ProviderRequestRefused(f"stripe: {amount.currency} amounts must end in 0")
    return amount.amount


class StripeProvider:
    name = "stripe"
    supports_livemode = True
    credentials_model: type[BaseModel] | None = StripeCredentials
    secret_fields: frozenset[str] = frozenset({"secret_key"})
    webhook_secret_required = True

    def __init__(
        self,
        settings: Settings,
        credentials: CredentialSource,
        http: ProviderHttp,
        *,
        max_network_retries: int = 1,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._sdk_http = PaycoreHttpClient(http)
        # One SDK retry (same idempotency key) fits inside the registry's per-call time limit.
        self._max_network_retries = max_network_retries

    def _client(self, credentials: ProviderCredentials) -> stripe.StripeClient:
        """Made per call: the key is held for that call only, never in a long-lived cache."""
        return stripe.StripeClient(
            credentials.require("secret_key"),
            base_addresses={"api": self._settings.stripe_api_base},
            http_client=self._sdk_http,
            max_network_retries=self._max_network_retries,
        )

    async def _account_client(
        self, account: ProviderAccount
    ) -> tuple[stripe.StripeClient, ProviderCredentials]:
        credentials = await credentials_for(self._credentials, account, self.name)
        return self._client(credentials), credentials

    async def check_ready(self, account: ProviderAccount) -> None:
        credentials = await credentials_for(self._credentials, account, self.name)
        credentials.require("secret_key")
        credentials.require("publishable_key")

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        client, credentials = await self._account_client(request.account)
        publishable_key = credentials.require("publishable_key")
        amount = stripe_amount(request.amount)
        # Same attempt → same parameters: Stripe refuses a reused idempotency key with others.
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": amount,
            "currency": request.amount.currency.lower(),
            "automatic_payment_methods": {"enabled": True},
            "description": f"Order {request.order_number}",
            "metadata": {
                ATTEMPT_KEY: request.attempt_id,
                "paycore_tenant": request.account.tenant_id,
                "paycore_order": request.order_id,
                "paycore_order_number": request.order_number,
            },
        }
        intent = (
            await call_stripe(
                lambda: client.v1.payment_intents.create_async(
                    params, options={"idempotency_key": request.attempt_id}
                )
            )
        ).to_dict()
        intent_id = stripe_events.text(intent.get("id"))
        client_secret = stripe_events.text(intent.get("client_secret"))
        if intent_id is None or client_secret is None:
            raise ProviderUnavailable("stripe answered a PaymentIntent without an id or client secret")
        if stripe_events.mapping(intent.get("metadata")).get(ATTEMPT_KEY) != request.attempt_id:
            raise ProviderRequestRefused("stripe answered a PaymentIntent made for another attempt")
        return PaymentSession(
            provider_ref=intent_id,
            redirect_url=None,
            client_data={"client_secret": client_secret, "publishable_key": publishable_key},
        )

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> VerifiedWebhook:
        header = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER)

        async def verify_with(credentials: ProviderCredentials) -> dict[str, Any]:
            try:
                verify(credentials.webhook_secrets, header, body, now=int(now.timestamp()))
            except SignatureError as exc:
                raise WebhookRejected(exc.reason, str(exc)) from None
            return _event_payload(body)

        return await verify_in_either_mode(self._credentials, account, self.name, verify_with)

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        return stripe_events.to_neutral(payload, livemode=livemode)

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        return await self.fetch_status(account, payment_ref)  # nothing waits on us here

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        client, _ = await self._account_client(account)
        intent = await call_stripe(lambda: client.v1.payment_intents.retrieve_async(payment_ref))
        return stripe_events.payment_status(intent.to_dict())

    async def confirm(
        self,
        account: ProviderAccount,
        payment_ref: str,
        params: Mapping[str, Any],  # noqa: ARG002 (Elements confirmed in the browser: read Stripe instead)
    ) -> ProviderPaymentStatus:
        return await self.fetch_status(account, payment_ref)

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        client, _ = await self._account_client(account)
        # Stripe keeps idempotency keys for 24 hours at least, not for ever; a refund asked again
        # later (one still pending at Stripe) is found by our id first, so it is never made twice.
        existing = await self._find_refund(client, payment_ref, refund_id)
        if existing is not None:
            return stripe_events.refund_outcome(existing)
        params: stripe.params.RefundCreateParams = {
            "payment_intent": payment_ref,
            "amount": stripe_amount(amount),
            "metadata": {REFUND_KEY: refund_id, "paycore_tenant": account.tenant_id},
        }
        refund = await call_stripe(
            lambda: client.v1.refunds.create_async(params, options={"idempotency_key": refund_id})
        )
        return stripe_events.refund_outcome(refund.to_dict())

    async def _find_refund(
        self, client: stripe.StripeClient, payment_ref: str, refund_id: str
    ) -> dict[str, Any] | None:
        params: stripe.params.RefundListParams = {"payment_intent": payment_ref, "limit": _PAGE}
        while True:
            page = await call_stripe(partial(client.v1.refunds.list_async, params))
            refunds = [refund.to_dict() for refund in page.data]
            for refund in refunds:
                if stripe_events.mapping(refund.get("metadata")).get(REFUND_KEY) == refund_id:
                    return refund
            last = stripe_events.text(refunds[-1].get("id")) if refunds else None
            if not page.has_more or last is None:
                return None
            params = {"payment_intent": payment_ref, "limit": _PAGE, "starting_after": last}


def _event_payload(body: bytes) -> dict[str, Any]:
    payload = parse_json_object(body, "a Stripe event")
    if stripe_events.text(payload.get("id")) is None or stripe_events.text(payload.get("type")) is None:
        raise WebhookRejected("malformed_body", "the body is not a Stripe event")
    return payload
