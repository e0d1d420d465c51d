"""The sandbox provider adapter: paycore's side of the built-in test provider.

It talks to the sandbox back office (`paycore.sandbox`) the way the Stripe adapter talks to
Stripe's API, and verifies the sandbox's webhooks the way it would verify Stripe's. Test mode only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from paycore.config import Settings
from paycore.db import Database
from paycore.errors import PaycoreError
from paycore.money import Money, MoneyError
from paycore.payments.providers.base import (
    NeutralEvent,
    NeutralKind,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderPaymentState,
    ProviderPaymentStatus,
    RefundOutcome,
    RefundState,
    VerifiedWebhook,
    WebhookRejected,
)
from paycore.payments.providers.common import parse_json_object
from paycore.sandbox import service as backoffice
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.signing import SIGNATURE_HEADER, SignatureError, verify

_KINDS = {
    "payment.succeeded": NeutralKind.PAYMENT_SUCCEEDED,
    "payment.processing": NeutralKind.PAYMENT_PENDING,
    "payment.failed": NeutralKind.PAYMENT_FAILED,
    "refund.succeeded": NeutralKind.REFUND_SUCCEEDED,
    "refund.failed": NeutralKind.REFUND_FAILED,
}
_STATES = {
    backoffice.SUCCEEDED: ProviderPaymentState.SUCCEEDED,
    backoffice.DECLINED: ProviderPaymentState.FAILED,
    backoffice.REQUIRES_ACTION: ProviderPaymentState.PENDING,
}


class SandboxProvider:
    name = "sandbox"
    supports_livemode = False
    credentials_model: type[BaseModel] | None = None  # its secret is derived per tenant: nothing to set
    secret_fields: frozenset[str] = frozenset()
    webhook_secret_required = False

    def __init__(self, settings: Settings, database: Database) -> None:
        self._settings = settings
        self._database = database

    async def check_ready(self, account: ProviderAccount) -> None:
        pass

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        # One statement (an insert unless the reference is known): no transaction of its own.
        async with self._database.single_statement() as session:
            payment = await backoffice.create_payment(
                session,
                tenant_id=request.account.tenant_id,
                merchant_reference=request.attempt_id,
                amount=request.amount.amount,
                currency=request.amount.currency,
                return_url=request.return_url,
            )
        return PaymentSession(
            provider_ref=payment.id,
            redirect_url=f"{self._settings.public_url}/sandbox/pay/{request.attempt_id}",
        )

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> VerifiedWebhook:
        secret = webhook_secret(self._settings, account.tenant_id)
        try:
            verify([secret], headers.get(SIGNATURE_HEADER.lower()), body, now=int(now.timestamp()))
        except SignatureError as exc:
            raise WebhookRejected(exc.reason, str(exc)) from None
        payload = parse_json_object(body, "a sandbox event")
        if not isinstance(payload.get("id"), str) or not payload["id"]:
            raise WebhookRejected("malformed_body", "the body is not a sandbox event")
        return VerifiedWebhook(payload=payload, livemode=False)

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:  # noqa: ARG002
        event_type = str(payload.get("type", ""))
        is_refund = event_type.startswith("refund.")
        data = _mapping(payload.get("data"))
        subject = _mapping(data.get("refund" if is_refund else "payment"))
        return NeutralEvent(
            provider_event_id=str(payload["id"]),
            type=event_type,
            kind=_KINDS.get(event_type, NeutralKind.IGNORED),
            livemode=False,
            payment_ref=_text(subject.get("payment") if is_refund else subject.get("id")),
            merchant_reference=_text(subject.get("merchant_reference")),
            refund_ref=_text(subject.get("id")) if is_refund else None,
            amount=_money(subject.get("amount"), subject.get("currency")),
            failure_reason=_text(data.get("failure_reason")),
        )

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        return await self.fetch_status(account, payment_ref)  # nothing waits on us here

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        async with self._database.session(write=False) as session:
            payment = await backoffice.get_payment(
                session, tenant_id=account.tenant_id, payment_id=payment_ref
            )
        return ProviderPaymentStatus(
            state=_STATES.get(payment.status, ProviderPaymentState.PENDING),
            amount=Money(payment.amount, payment.currency),
        )

    async def confirm(
        self,
        account: ProviderAccount,
        payment_ref: str,
        params: Mapping[str, Any],  # noqa: ARG002 (the sandbox's pay page brings nothing back)
    ) -> ProviderPaymentStatus:
        return await self.fetch_status(account, payment_ref)

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        try:
            async with self._database.session(write=True) as session:
                refund = await backoffice.refund_payment(
                    session,
                    tenant_id=account.tenant_id,
                    payment_id=payment_ref,
                    amount=amount.amount,
                    merchant_reference=refund_id,
                )
        except PaycoreError as exc:
            return RefundOutcome(provider_ref=None, state=RefundState.FAILED, failure_reason=exc.message)
        return RefundOutcome(provider_ref=refund.id, state=RefundState.SUCCEEDED)


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _money(amount: object, currency: object) -> Money | None:
    if not isinstance(amount, int) or not isinstance(currency, str):
        return None
    try:
        return Money(amount, currency)
    except MoneyError:
        return None
