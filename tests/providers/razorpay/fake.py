"""A small fake of Razorpay's API, written from its documentation (razorpay.com/docs/api):
orders (create, fetch, fetch all with `receipt`, fetch payments), payments (fetch), refunds
(create, fetch all of a payment), HTTP Basic auth with the key pair. Amounts are integers in
minor units; Razorpay writes empty notes as `[]`, and so does the fake.

Test-only helpers play the other side: the customer paying in Checkout (`pay`), Checkout's
signed response (`checkout_response`) and Razorpay's signed webhooks (`webhook`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

HOST = "api.razorpay.com"
_ALNUM = string.ascii_letters + string.digits
_ORDER_FIELDS = {"amount", "currency", "receipt", "notes", "partial_payment"}
_REFUND_FIELDS = {"amount", "speed", "notes", "receipt"}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALNUM) for _ in range(14))}"


def _error(status: int, description: str, code: str = "BAD_REQUEST_ERROR") -> JSONResponse:
    body = {"error": {"code": code, "description": description, "source": "NA", "step": "NA", "reason": "NA"}}
    return JSONResponse(body, status_code=status)


def sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class FakeRazorpay:
    key_id: str = "rzp_test_FakeKey0001"
    key_secret: str = "fake_key_secret_0123456789"
    refund_status: str = "processed"
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    # Further accounts' key pairs (key id → key secret): each merchant has its own account.
    other_keys: dict[str, str] = field(default_factory=dict)
    # Key ids whose calls are answered 429: Razorpay's rate limits are per account.
    rate_limited: set[str] = field(default_factory=set)
    # Status codes to answer the next requests with, before doing anything.
    fail_next: list[int] = field(default_factory=list)
    # Create the next refund, then answer 504 as if the response was lost on the way.
    lose_next_refund_response: bool = False
    # Each event Razorpay creates has its own `created_at`; two events made in the same second
    # would otherwise have the same signed body, which paycore rightly takes for one event.
    last_event_at: int = 0
    app: FastAPI = field(init=False)

    def __post_init__(self) -> None:
        self.app = self._build()

    # --- what the customer and Razorpay do -------------------------------------------------

    def pay(self, order_id: str, *, status: str = "captured") -> dict[str, Any]:
        """The customer pays in Checkout: one payment on the order, `captured`, `authorized` or `failed`."""
        order = self.orders[order_id]
        payment = {
            "id": _new_id("pay"),
            "entity": "payment",
            "amount": order["amount"],
            "currency": order["currency"],
            "status": status,
            "order_id": order_id,
            "method": "upi",
            "amount_refunded": 0,
            "refund_status": None,
            "captured": status == "captured",
            "notes": [],
            "error_code": "BAD_REQUEST_ERROR" if status == "failed" else None,
            "error_description": "Payment was unsuccessful" if status == "failed" else None,
            "error_reason": "payment_failed" if status == "failed" else None,
            "created_at": int(time.time()) + len(self.payments),
        }
        self.payments[payment["id"]] = payment
        order["attempts"] += 1
        if status == "captured":
            order.update(status="paid", amount_paid=order["amount"], amount_due=0)
        elif order["status"] == "created":
            order["status"] = "attempted"
        return payment

    def capture(self, payment_id: str) -> dict[str, Any]:
        """A payment that failed (or was authorised) is captured after all: a late UPI success."""
        payment = self.payments[payment_id]
        payment.update(status="captured", captured=True, error_code=None, error_description=None)
        order = self.orders[payment["order_id"]]
        order.update(status="paid", amount_paid=payment["amount"], amount_due=0)
        return payment

    def checkout_response(self, payment: dict[str, Any], *, key_secret: str | None = None) -> dict[str, str]:
        """What Razorpay Checkout's handler receives on success."""
        message = f"{payment['order_id']}|{payment['id']}".encode()
        return {
            "razorpay_order_id": payment["order_id"],
            "razorpay_payment_id": payment["id"],
            "razorpay_signature": sign(key_secret or self.key_secret, message),
        }

    def webhook(
        self,
        event: str,
        *,
        secret: str,
        payment: dict[str, Any] | None = None,
        refund: dict[str, Any] | None = None,
        event_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook as Razorpay sends it: the body and its headers."""
        payload: dict[str, Any] = {}
        if payment is not None:
            payload["payment"] = {"entity": dict(payment)}
        if refund is not None:
            payload["refund"] = {"entity": dict(refund)}
        if event == "order.paid" and payment is not None:
            payload["order"] = {"entity": dict(self.orders[payment["order_id"]])}
        self.last_event_at = max(int(time.time()), self.last_event_at + 1)
        body = json.dumps(
            {
                "entity": "event",
                "account_id": "acc_FakeAccount01",
                "event": event,
                "contains": list(payload),
                "payload": payload,
                "created_at": self.last_event_at,
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign(secret, body),
            "x-razorpay-event-id": event_id or _new_id("evt"),
        }
        return body, headers

    def calls_to(self, method: str, prefix: str) -> int:
        return sum(1 for called, path in self.calls if called == method and path.startswith(prefix))

    # --- the API ---------------------------------------------------------------------------

    @staticmethod
    def _key_pair(request: Request) -> tuple[str, str]:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return "", ""
        try:
            key_id, _, key_secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return "", ""
        return key_id, key_secret

    def _authorized(self, request: Request) -> bool:
        key_id, key_secret = self._key_pair(request)
        known = {self.key_id: self.key_secret, **self.other_keys}
        expected = known.get(key_id)
        return bool(key_id) and expected is not None and hmac.compare_digest(key_secret, expected)

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Any:
            fake.calls.append((request.method, request.url.path))
            if fake.fail_next:
                return _error(fake.fail_next.pop(0), "injected failure", code="SERVER_ERROR")
            if fake._key_pair(request)[0] in fake.rate_limited:
                return _error(429, "Too many requests")
            if not fake._authorized(request):
                return _error(401, "Authentication failed")
            return await call_next(request)

        @app.post("/v1/orders")
        async def create_order(request: Request) -> Any:
            body = await request.json()
            amount, currency = body.get("amount"), body.get("currency")
            if set(body) - _ORDER_FIELDS:
                return _error(
                    400, f"{sorted(set(body) - _ORDER_FIELDS)[0]} is/are not required and should not be sent"
                )
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 100:
                return _error(400, "The amount must be atleast INR 1.00")
            if not isinstance(currency, str) or len(currency) != 3:
                return _error(400, "The currency field is required")
            receipt, notes = body.get("receipt"), body.get("notes") or []
            if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
                return _error(400, "The receipt may not be greater than 40 characters.")
            if isinstance(notes, dict) and len(notes) > 15:
                return _error(400, "Number of fields in notes should be less than or equal to 15")
            order = {
                "id": _new_id("order"),
                "entity": "order",
                "amount": amount,
                "amount_paid": 0,
                "amount_due": amount,
                "currency": currency,
                "receipt": receipt,
                "offer_id": None,
                "status": "created",
                "attempts": 0,
                "notes": notes,
                "created_at": int(time.time()) + len(fake.orders),
            }
            fake.orders[order["id"]] = order
            return order

        @app.get("/v1/orders")
        async def list_orders(receipt: str | None = None, count: int = 10, skip: int = 0) -> Any:
            found = [o for o in fake.orders.values() if receipt is None or receipt in (o["receipt"] or "")]
            found.sort(key=lambda o: o["created_at"], reverse=True)
            page = found[skip : skip + min(count, 100)]
            return {"entity": "collection", "count": len(page), "items": page}

        @app.get("/v1/orders/{order_id}")
        async def fetch_order(order_id: str) -> Any:
            order = fake.orders.get(order_id)
            return order if order is not None else _error(400, "The id provided does not exist")

        @app.get("/v1/orders/{order_id}/payments")
        async def order_payments(order_id: str) -> Any:
            if order_id not in fake.orders:
                return _error(400, "The id provided does not exist")
            items = [p for p in fake.payments.values() if p["order_id"] == order_id]
            return {"entity": "collection", "count": len(items), "items": items}

        @app.get("/v1/payments/{payment_id}")
        async def fetch_payment(payment_id: str) -> Any:
            payment = fake.payments.get(payment_id)
            return payment if payment is not None else _error(400, "The id provided does not exist")

        @app.post("/v1/payments/{payment_id}/refund")
        async def create_refund(payment_id: str, request: Request) -> Any:
            payment = fake.payments.get(payment_id)
            if payment is None:
                return _error(400, "The id provided does not exist")
            body = await request.json()
            if set(body) - _REFUND_FIELDS:
                return _error(400, "extra fields sent")
            amount = body.get("amount", payment["amount"] - payment["amount_refunded"])
            if not payment["captured"]:
                return _error(400, "The payment has not been captured")
            if not isinstance(amount, int) or amount <= 0:
                return _error(400, "The amount must be an integer")
            if amount > payment["amount"] - payment["amount_refunded"]:
                return _error(400, "The refund amount provided is greater than amount captured")
            refund = {
                "id": _new_id("rfnd"),
                "entity": "refund",
                "amount": amount,
                "currency": payment["currency"],
                "payment_id": payment_id,
                "notes": body.get("notes") or [],
                "receipt": body.get("receipt"),
                "status": fake.refund_status,
                "speed_requested": body.get("speed", "normal"),
                "created_at": int(time.time()) + len(fake.refunds),
            }
            fake.refunds[refund["id"]] = refund
            payment["amount_refunded"] += amount
            fully = payment["amount_refunded"] == payment["amount"]
            payment.update(
                refund_status="full" if fully else "partial", status="refunded" if fully else "captured"
            )
            if fake.lose_next_refund_response:
                fake.lose_next_refund_response = False
                return _error(504, "gateway timeout", code="SERVER_ERROR")
            return refund

        @app.get("/v1/payments/{payment_id}/refunds")
        async def payment_refunds(payment_id: str, count: int = 10, skip: int = 0) -> Any:
            items = [r for r in fake.refunds.values() if r["payment_id"] == payment_id]
            items.sort(key=lambda r: r["created_at"], reverse=True)
            page = items[skip : skip + min(count, 100)]
            return {"entity": "collection", "count": len(page), "items": page}

        return app
