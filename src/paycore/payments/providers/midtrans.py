"""The Midtrans adapter: Snap for the payment page, the Core API (v2) for status and refunds, and
notifications signed with the account's server key.

- Midtrans' `order_id` is our attempt id (`pay_` + 22 base62: letters, digits and `_`, 26
  characters; Midtrans allows `-_~.`, letters and digits, up to 50), and so is `provider_ref`: the
  status and refund APIs take it, and every notification carries it back.
- Snap has no idempotency key and no way to read a token back: a second create for the same
  order_id is refused by Midtrans. paycore creates once per attempt (checkout converts the cart
  first), so a refusal here is answered as a refusal; the order then expires unpaid.
- The Core API may answer HTTP 200 with an error in the body's `status_code` (the official SDK
  checks both): both are read here.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel

from paycore.config import Settings
from paycore.money import Money
from paycore.payments.providers.base import (
    CredentialSource,
    NeutralEvent,
    NeutralKind,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
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
    ERROR_EXCERPT,
    ProviderHttp,
    credentials_for,
    json_object,
    parse_json_object,
    raise_for_provider,
    send,
)
from paycore.payments.providers.midtrans_credentials import MidtransCredentials
from paycore.payments.providers.midtrans_mapping import (
    AmountNotConvertible,
    event_id,
    gross_amount_of,
    latest_refund,
    money_of,
    neutral_kind,
    payment_state,
    refund_ref,
)
from paycore.payments.providers.midtrans_signing import signature_matches

NAME = "midtrans"
# The notification fields the signature covers, plus what says what happened.
_SIGNED_FIELDS = ("order_id", "status_code", "gross_amount", "signature_key", "transaction_status")
# What Midtrans allows in an order_id; also keeps our references safe to put in a URL path.
# (At least one letter or digit: `..` is allowed by Midtrans but means something else in a path.)
_ORDER_ID = re.compile(r"(?=.*[A-Za-z0-9])[A-Za-z0-9\-_~.]{1,50}")


class MidtransProvider:
    name = NAME
    supports_livemode = True
    credentials_model: type[BaseModel] | None = MidtransCredentials
    secret_fields: frozenset[str] = frozenset({"server_key"})
    # Notifications are signed with the server key itself: no separate webhook secret to set.
    webhook_secret_required = False

    def __init__(self, settings: Settings, credentials: CredentialSource, http: ProviderHttp) -> None:
        self._settings = settings
        self._credentials = credentials
        self._http = http

    # -- calls to Midtrans -------------------------------------------------------------------

    async def _keys(self, account: ProviderAccount) -> tuple[str, str]:
        found = await credentials_for(self._credentials, account, NAME)
        return found.require("server_key"), found.require("client_key")

    def _headers(self, server_key: str) -> dict[str, str]:
        token = base64.b64encode(f"{server_key}:".encode()).decode()
        return {
            "Authorization": f"Basic {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _api_base(self, livemode: bool) -> str:
        return self._settings.midtrans_api_base_live if livemode else self._settings.midtrans_api_base_test

    def _snap_base(self, livemode: bool) -> str:
        return self._settings.midtrans_snap_base_live if livemode else self._settings.midtrans_snap_base_test

    async def check_ready(self, account: ProviderAccount) -> None:
        await self._keys(account)

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        server_key, client_key = await self._keys(request.account)
        _order_id(request.attempt_id)
        try:
            gross_amount = gross_amount_of(request.amount)
        except AmountNotConvertible as exc:
            raise ProviderRequestRefused(f"midtrans cannot take this amount: {exc}") from None
        body: dict[str, Any] = {
            "transaction_details": {"order_id": request.attempt_id, "gross_amount": gross_amount},
            "customer_details": {"email": request.customer_email},
        }
        if request.return_url:
            body["callbacks"] = {"finish": request.return_url}
        url = f"{self._snap_base(request.account.livemode)}/snap/v1/transactions"
        response = await send(
            lambda: self._http.client.post(url, json=body, headers=self._headers(server_key)), NAME
        )
        answer = json_object(response, NAME)
        token, redirect_url = answer.get("token"), answer.get("redirect_url")
        if not isinstance(token, str) or not token or not isinstance(redirect_url, str) or not redirect_url:
            raise ProviderUnavailable("midtrans answered a Snap transaction without a token or redirect URL")
        return PaymentSession(
            provider_ref=request.attempt_id,
            redirect_url=redirect_url,
            client_data={"snap_token": token, "client_key": client_key},
        )

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        return await self.fetch_status(account, payment_ref)  # nothing waits on us here

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        server_key, _ = await self._keys(account)
        url = f"{self._api_base(account.livemode)}/v2/{_order_id(payment_ref)}/status"
        answer = await self._core_call("GET", url, server_key)
        code = _text(answer.get("status_code"))
        if code == "404":
            # Snap made the token, the customer has not chosen a way to pay yet: still open.
            return ProviderPaymentStatus(state=ProviderPaymentState.PENDING, amount=None)
        _refuse_body_error(answer, allowed={"407"})  # 407: expired, a state rather than an error
        state = payment_state(
            _text(answer.get("transaction_status")) or "", _text(answer.get("fraud_status")), code or ""
        )
        return ProviderPaymentStatus(
            state=state,
            amount=money_of(answer.get("gross_amount"), answer.get("currency")),
            charge_ref=_text(answer.get("transaction_id")),
        )

    async def confirm(
        self,
        account: ProviderAccount,
        payment_ref: str,
        params: Mapping[str, Any],  # noqa: ARG002 (Snap's finish redirect carries nothing signed)
    ) -> ProviderPaymentStatus:
        # The `?order_id=…&transaction_status=…` Snap appends on return is the browser's word:
        # only the status API is asked.
        return await self.fetch_status(account, payment_ref)

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        server_key, _ = await self._keys(account)
        try:
            rupiah = gross_amount_of(amount)
        except AmountNotConvertible as exc:
            raise ProviderRequestRefused(f"midtrans cannot refund this amount: {exc}") from None
        # `refund_key` is Midtrans' idempotency key for refunds: a retry with it refunds once.
        body = {"refund_key": refund_id, "amount": rupiah, "reason": f"paycore refund {refund_id}"}
        url = f"{self._api_base(account.livemode)}/v2/{_order_id(payment_ref)}/refund"
        answer = await self._core_call("POST", url, server_key, body)
        code = _text(answer.get("status_code")) or ""
        reference = refund_ref(answer) or refund_id
        if code == "200":
            return RefundOutcome(provider_ref=reference, state=RefundState.SUCCEEDED)
        if code == "201":
            return RefundOutcome(provider_ref=reference, state=RefundState.PENDING)
        if code.startswith("5"):
            raise ProviderUnavailable(f"midtrans answered status_code {code[:3]} to a refund")
        # 412 (not refundable in this state), 413 and the like: refused for good.
        return RefundOutcome(
            provider_ref=None, state=RefundState.FAILED, failure_reason=_message(answer, code)
        )

    async def _core_call(
        self, method: str, url: str, server_key: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One Core API call. An HTTP 404 is an answer (the status API's "no transaction yet"),
        other HTTP errors are mapped by `raise_for_provider` (5xx/429 unavailable, 4xx refused)."""
        try:
            response = await self._http.client.request(
                method, url, json=body, headers=self._headers(server_key)
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"midtrans could not be reached: {type(exc).__name__}") from None
        if response.status_code == 404:
            return {"status_code": "404", "status_message": "Transaction doesn't exist."}
        raise_for_provider(response, NAME)
        return json_object(response, NAME)

    # -- notifications -----------------------------------------------------------------------

    async def verify_webhook(
        self,
        account: ProviderAccount,
        headers: Mapping[str, str],  # noqa: ARG002 (the signature is in the body)
        body: bytes,
        now: datetime,  # noqa: ARG002 (notifications carry no signed timestamp)
    ) -> VerifiedWebhook:
        """Midtrans signs with the account's server key: the key of each mode is tried in turn
        (a sandbox and a production key never both match), and the one that verifies says the
        mode. No mode with a server key refuses everything: fail closed. (`verify_in_either_mode`
        is not used: it looks for a webhook secret, which Midtrans does not have.)"""
        payload = _notification(body)
        tried = 0
        for livemode in (True, False):
            found = await self._credentials.get(account.tenant_id, NAME, livemode=livemode)
            server_key = found.values.get("server_key") if found is not None else None
            if not server_key:
                continue
            tried += 1
            if signature_matches(
                order_id=payload["order_id"],
                status_code=payload["status_code"],
                gross_amount=payload["gross_amount"],
                server_key=server_key,
                signature_key=payload["signature_key"],
            ):
                confirmed = await self._confirmed(payload, server_key, livemode=livemode)
                return VerifiedWebhook(payload=confirmed, livemode=livemode)
        if tried == 0:
            raise WebhookRejected(
                "webhook_secret_missing", "no midtrans server key is set for this tenant; refusing"
            )
        raise WebhookRejected("signature_mismatch", "the signature_key does not match")

    async def _confirmed(self, payload: dict[str, Any], server_key: str, *, livemode: bool) -> dict[str, Any]:
        """The signature covers only order_id, status_code and gross_amount: the status, fraud
        verdict, currency and refunds beside them could be edited in a genuine old body. So the
        notification is only a prompt — as Midtrans' own SDK does, the status API is asked, and
        its answer replaces those fields. (A late `pending` thus reads as today's `settlement`
        and dedupes with it.) Midtrans unreachable: `ProviderUnavailable`, the receiver answers
        503 and Midtrans sends the notification again."""
        try:
            order_id = _order_id(payload["order_id"])
        except ProviderRequestRefused:
            raise WebhookRejected("malformed_body", "the order_id is not one paycore issues") from None
        answer = await self._core_call("GET", f"{self._api_base(livemode)}/v2/{order_id}/status", server_key)
        if _text(answer.get("status_code")) == "404" or _text(answer.get("order_id")) != order_id:
            raise WebhookRejected("not_confirmed", "the status API does not know this transaction")
        confirmed = {key: value for key, value in payload.items() if key not in _CONFIRMED_FIELDS}
        confirmed.update({key: answer[key] for key in _CONFIRMED_FIELDS if key in answer})
        return confirmed

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        status = _text(payload.get("transaction_status")) or ""
        fraud = _text(payload.get("fraud_status"))
        kind = neutral_kind(status, fraud, _text(payload.get("status_code")) or "")
        order_id = _text(payload.get("order_id"))
        event_type = (f"{status}.{fraud}" if fraud and fraud != "accept" else status) or "unknown"
        if kind is NeutralKind.REFUND_SUCCEEDED:
            refund = latest_refund(payload)
            return NeutralEvent(
                provider_event_id=event_id(payload),
                type=event_type,
                kind=kind,
                livemode=livemode,
                payment_ref=order_id,
                # Our refund id when the refund was ours: we send it as the `refund_key`.
                merchant_reference=_text(refund.get("refund_key")),
                refund_ref=refund_ref(refund),
                amount=money_of(refund.get("refund_amount"), payload.get("currency")),
            )
        return NeutralEvent(
            provider_event_id=event_id(payload),
            type=event_type,
            kind=kind,
            livemode=livemode,
            payment_ref=order_id,
            # The order_id is our attempt id: it matches even before checkout stored the reference.
            merchant_reference=order_id,
            amount=money_of(payload.get("gross_amount"), payload.get("currency")),
            failure_reason=status if kind is NeutralKind.PAYMENT_FAILED else None,
        )


# What the status API says about a transaction, trusted over the notification's own copy.
_CONFIRMED_FIELDS = (
    "transaction_status",
    "fraud_status",
    "status_code",
    "gross_amount",
    "currency",
    "transaction_id",
    "refund_amount",
    "refunds",
    "settlement_time",
)


def _notification(body: bytes) -> dict[str, Any]:
    payload = parse_json_object(body, "a Midtrans notification")
    for field in _SIGNED_FIELDS:
        # Strings only: the signature is over the received text, and a number has no one text.
        if not isinstance(payload.get(field), str) or not payload[field]:
            raise WebhookRejected("malformed_body", f"the notification has no {field} string")
    return payload


def _order_id(reference: str) -> str:
    if not _ORDER_ID.fullmatch(reference):
        raise ProviderRequestRefused("this payment reference is not a Midtrans order_id")
    return reference


def _refuse_body_error(answer: dict[str, Any], *, allowed: set[str]) -> None:
    code = _text(answer.get("status_code")) or ""
    if code in allowed or code[:1] not in {"4", "5"}:
        return
    if code.startswith("5"):
        raise ProviderUnavailable(f"midtrans answered status_code {code[:3]}")
    raise ProviderRequestRefused(f"midtrans refused the request: {_message(answer, code)}")


def _message(answer: dict[str, Any], code: str) -> str:
    message = _text(answer.get("status_message")) or "no message"
    return f"{code[:3] or 'no status_code'}: {message[:ERROR_EXCERPT]}"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
