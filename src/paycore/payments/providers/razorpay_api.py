"""The few Razorpay API calls paycore makes (Orders, Payments, Refunds), with Basic auth.

Ids that go into a URL path are checked against Razorpay's id shapes first, so nothing a browser
sent can steer a call to another endpoint. What comes back is checked just as far as paycore relies
on it; an answer that is not what Razorpay documents is the provider's trouble (`ProviderUnavailable`).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from paycore.money import Money, MoneyError
from paycore.payments.providers.base import ProviderRequestRefused, ProviderUnavailable
from paycore.payments.providers.common import ProviderHttp, json_object, send
from paycore.payments.providers.razorpay_events import REFUND_NOTE

PROVIDER = "razorpay"
ORDER_ID = re.compile(r"order_[A-Za-z0-9]{1,40}")
PAYMENT_ID = re.compile(r"pay_[A-Za-z0-9]{1,40}")
# Razorpay's page size ceiling for collections.
PAGE = 100
# Refunds of one payment looked through before refusing to create another (fail closed).
MAX_REFUND_PAGES = 20


def require_id(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ProviderRequestRefused(f"{what} is not a Razorpay id")
    return value


def money_of(subject: dict[str, Any], amount_field: str = "amount") -> Money:
    amount, currency = subject.get(amount_field), subject.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
        raise ProviderUnavailable(f"{PROVIDER} answered an entity without an integer amount and currency")
    try:
        return Money(amount, currency)
    except MoneyError:
        raise ProviderUnavailable(f"{PROVIDER} answered an amount paycore cannot hold") from None


def text_of(subject: dict[str, Any], field: str) -> str:
    value = subject.get(field)
    if not isinstance(value, str) or not value:
        raise ProviderUnavailable(f"{PROVIDER} answered an entity without {field}")
    return value


def is_captured(payment: dict[str, Any]) -> bool:
    """Money that reached the merchant. A payment refunded later was captured; one Razorpay
    auto-refunded without capture (`captured: false`, status `refunded`) never was."""
    return payment.get("captured") is True and payment.get("status") in {"captured", "refunded"}


class RazorpayApi:
    """One tenant's key pair, for the length of one adapter call."""

    def __init__(self, http: ProviderHttp, base_url: str, key_id: str, key_secret: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._auth = httpx.BasicAuth(key_id, key_secret)

    async def _get(self, path: str, params: dict[str, str | int] | None = None) -> dict[str, Any]:
        url = f"{self._base}{path}"
        response = await send(lambda: self._http.client.get(url, params=params, auth=self._auth), PROVIDER)
        return json_object(response, PROVIDER)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base}{path}"
        response = await send(lambda: self._http.client.post(url, json=body, auth=self._auth), PROVIDER)
        return json_object(response, PROVIDER)

    @staticmethod
    def _items(collection: dict[str, Any]) -> list[dict[str, Any]]:
        items = collection.get("items")
        if not isinstance(items, list):
            raise ProviderUnavailable(f"{PROVIDER} answered a collection without items")
        return [item for item in items if isinstance(item, dict)]

    async def create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/v1/orders", body)

    async def orders_with_receipt(self, receipt: str) -> list[dict[str, Any]]:
        """Orders whose receipt is exactly `receipt` (Razorpay's filter matches on "contains")."""
        found = self._items(await self._get("/v1/orders", {"receipt": receipt, "count": PAGE}))
        return [order for order in found if order.get("receipt") == receipt]

    async def order(self, order_id: str) -> dict[str, Any]:
        return await self._get(f"/v1/orders/{require_id(ORDER_ID, order_id, 'the order')}")

    async def order_payments(self, order_id: str) -> list[dict[str, Any]]:
        path = f"/v1/orders/{require_id(ORDER_ID, order_id, 'the order')}/payments"
        return self._items(await self._get(path))

    async def payment(self, payment_id: str) -> dict[str, Any]:
        return await self._get(f"/v1/payments/{require_id(PAYMENT_ID, payment_id, 'the payment')}")

    async def refund_with_receipt(self, payment_id: str, receipt: str) -> dict[str, Any] | None:
        """The payment's refund made for `receipt` (our refund id), if one exists."""
        path = f"/v1/payments/{require_id(PAYMENT_ID, payment_id, 'the payment')}/refunds"
        for page in range(MAX_REFUND_PAGES):
            items = self._items(await self._get(path, {"count": PAGE, "skip": page * PAGE}))
            for refund in items:
                notes = refund.get("notes")
                noted = isinstance(notes, dict) and notes.get(REFUND_NOTE) == receipt
                if refund.get("receipt") == receipt or noted:
                    return refund
            if len(items) < PAGE:
                return None
        # Never seen in practice; if it happens, refunding again could refund twice: refuse.
        raise ProviderRequestRefused(
            f"the payment has over {MAX_REFUND_PAGES * PAGE} refunds; refund it in the Razorpay dashboard"
        )

    async def create_refund(self, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/v1/payments/{require_id(PAYMENT_ID, payment_id, 'the payment')}/refund"
        return await self._post(path, body)
