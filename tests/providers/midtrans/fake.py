"""A small fake of Midtrans, written from its documented APIs (Snap, Core API v2, HTTP
notification), served to the adapter through `HostRouter`.

Served: `POST /snap/v1/transactions` (201 `{token, redirect_url}`, 401 for a bad key, 400 for a
second create with the same order_id), `GET /v2/{order_id}/status` (404 until the customer picks a
way to pay), `POST /v2/{order_id}/refund` (idempotent on `refund_key`; an error in the body's
`status_code` with HTTP 200, as Midtrans does). Test helpers play the customer (`pay`) and build
the notification Midtrans would send, signed the way Midtrans signs it.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from paycore.payments.providers.midtrans_signing import notification_signature
from tests.providers.support import HostRouter

SERVER_KEY = "SB-Mid-server-TEST"
CLIENT_KEY = "SB-Mid-client-TEST"
LIVE_SERVER_KEY = "Mid-server-LIVE1234"
LIVE_CLIENT_KEY = "Mid-client-LIVE1234"
SNAP_HOST = "app.sandbox.midtrans.com"
API_HOST = "api.sandbox.midtrans.com"
LIVE_SNAP_HOST = "app.midtrans.com"
LIVE_API_HOST = "api.midtrans.com"

_ORDER_ID = re.compile(r"[A-Za-z0-9\-_~.]{1,50}")

# What the customer's payment ends as: (transaction_status, fraud_status, status_code, payment_type).
OUTCOMES: dict[str, tuple[str, str | None, str, str]] = {
    "pending": ("pending", None, "201", "bank_transfer"),
    "settlement": ("settlement", "accept", "200", "bank_transfer"),
    "capture": ("capture", "accept", "200", "credit_card"),
    "challenge": ("capture", "challenge", "201", "credit_card"),
    "deny": ("deny", "accept", "202", "credit_card"),
    "cancel": ("cancel", "accept", "200", "credit_card"),
    "expire": ("expire", None, "407", "bank_transfer"),
}


@dataclass
class Transaction:
    order_id: str
    gross_amount: int  # whole rupiah, as Snap was given it
    token: str
    server_key: str
    transaction_id: str | None = None  # made when the customer picks a way to pay
    transaction_status: str = "pending"
    fraud_status: str | None = None
    status_code: str = "201"
    payment_type: str = "bank_transfer"
    settlement_time: str | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)
    refund_answers: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeMidtrans:
    def __init__(self, *, server_keys: tuple[str, ...] = (SERVER_KEY, LIVE_SERVER_KEY)) -> None:
        self.server_keys = set(server_keys)
        self.transactions: dict[str, Transaction] = {}
        self.requests: list[dict[str, Any]] = []
        # Set to an HTTP status to make every API call answer it (a Midtrans outage).
        self.fail_with: int | None = None
        # Set to a status code to make the Core API answer HTTP 200 with that error in the body.
        self.body_error: str | None = None
        self.app = self._build()

    def transport(self) -> HostRouter:
        return HostRouter({host: self.app for host in (SNAP_HOST, API_HOST, LIVE_SNAP_HOST, LIVE_API_HOST)})

    # -- test helpers ------------------------------------------------------------------------

    def pay(self, order_id: str, outcome: str = "settlement") -> dict[str, Any]:
        """The customer pays (or fails to) at Midtrans; returns the notification Midtrans sends."""
        transaction = self.transactions[order_id]
        status, fraud, code, payment_type = OUTCOMES[outcome]
        transaction.transaction_id = transaction.transaction_id or str(uuid.uuid4())
        transaction.transaction_status, transaction.fraud_status = status, fraud
        transaction.status_code, transaction.payment_type = code, payment_type
        if status in {"settlement", "capture"} and code == "200":
            transaction.settlement_time = "2024-01-01 10:00:05"
        return self.notification(order_id)

    def notification(
        self, order_id: str, *, server_key: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """The notification body for the transaction's current state, signed over its own strings
        (before `overrides` are applied: pass e.g. `gross_amount="99000"` to tamper with it)."""
        transaction = self.transactions[order_id]
        body: dict[str, Any] = {
            "transaction_time": "2024-01-01 10:00:00",
            "transaction_status": transaction.transaction_status,
            "transaction_id": transaction.transaction_id,
            "status_message": "midtrans payment notification",
            "status_code": transaction.status_code,
            "payment_type": transaction.payment_type,
            "order_id": order_id,
            "merchant_id": "G000000000",
            "gross_amount": f"{transaction.gross_amount}.00",
            "currency": "IDR",
        }
        if transaction.fraud_status is not None:
            body["fraud_status"] = transaction.fraud_status
        if transaction.settlement_time is not None:
            body["settlement_time"] = transaction.settlement_time
        if transaction.refunds:
            body["refunds"] = [dict(refund) for refund in transaction.refunds]
            body["refund_amount"] = f"{sum(int(r['refund_amount'][:-3]) for r in transaction.refunds)}.00"
        body["signature_key"] = notification_signature(
            order_id=body["order_id"],
            status_code=body["status_code"],
            gross_amount=body["gross_amount"],
            server_key=server_key or transaction.server_key,
        )
        body.update(overrides)
        return body

    def refund_at_dashboard(self, order_id: str, amount: int) -> dict[str, Any]:
        """A refund the merchant makes in Midtrans' dashboard (no refund_key of ours)."""
        self._refund(self.transactions[order_id], amount, refund_key=f"dashboard-{uuid.uuid4().hex[:8]}")
        return self.notification(order_id)

    # -- the API -----------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            body = await request.body()
            self.requests.append(
                {
                    "method": request.method,
                    "host": request.url.hostname,
                    "path": request.url.path,
                    "authorization": request.headers.get("authorization"),
                    "body": body,
                }
            )
            if self.fail_with is not None:
                return JSONResponse({"status_code": str(self.fail_with)}, status_code=self.fail_with)
            if self.body_error is not None and request.url.path.startswith("/v2/"):
                return JSONResponse({"status_code": self.body_error, "status_message": "error in the body"})
            if self._server_key(request) is None:
                return JSONResponse(
                    {
                        "error_messages": [
                            "Access denied due to unauthorized transaction, please check client or server key"
                        ]
                    },
                    status_code=401,
                )
            return await call_next(request)

        @app.post("/snap/v1/transactions")
        async def snap_create(request: Request) -> JSONResponse:
            body = await request.json()
            details = body.get("transaction_details") or {}
            order_id, gross_amount = details.get("order_id"), details.get("gross_amount")
            if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
                return _snap_error("transaction_details.order_id is invalid")
            if isinstance(gross_amount, bool) or not isinstance(gross_amount, int) or gross_amount < 1:
                return _snap_error("transaction_details.gross_amount must be an integer of at least 1")
            if order_id in self.transactions:
                # ⚠ The exact wording is not confirmed; Midtrans refuses a reused order_id.
                return _snap_error("transaction_details.order_id has already been taken")
            token = str(uuid.uuid4())
            self.transactions[order_id] = Transaction(
                order_id=order_id,
                gross_amount=gross_amount,
                token=token,
                server_key=self._server_key(request) or "",
            )
            host = request.url.hostname
            return JSONResponse(
                {"token": token, "redirect_url": f"https://{host}/snap/v4/redirection/{token}"},
                status_code=201,
            )

        @app.get("/v2/{order_id}/status")
        async def status(order_id: str) -> JSONResponse:
            transaction = self.transactions.get(order_id)
            if transaction is None or transaction.transaction_id is None:
                return JSONResponse(
                    {"status_code": "404", "status_message": "Transaction doesn't exist."}, status_code=404
                )
            body = self.notification(order_id)
            body["status_message"] = "Success, transaction is found"
            return JSONResponse(body)

        @app.post("/v2/{order_id}/refund")
        async def refund(order_id: str, request: Request) -> JSONResponse:
            transaction = self.transactions.get(order_id)
            if transaction is None or transaction.transaction_id is None:
                return JSONResponse(
                    {"status_code": "404", "status_message": "Transaction doesn't exist."}, status_code=404
                )
            body = await request.json()
            key, amount = body.get("refund_key"), body.get("amount")
            if isinstance(key, str) and key in transaction.refund_answers:
                return JSONResponse(transaction.refund_answers[key])  # same key: refunded once
            refundable = transaction.transaction_status in {"settlement", "partial_refund"} or (
                transaction.transaction_status == "capture" and transaction.fraud_status == "accept"
            )
            already = sum(int(r["refund_amount"][:-3]) for r in transaction.refunds)
            if not refundable or not isinstance(amount, int) or amount + already > transaction.gross_amount:
                return JSONResponse(
                    {
                        "status_code": "412",
                        "status_message": "Merchant cannot modify the status of the transaction",
                    }
                )
            answer = self._refund(transaction, amount, refund_key=key if isinstance(key, str) else None)
            return JSONResponse(answer)

        return app

    def _server_key(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if user in self.server_keys and password == "" else None

    def _refund(self, transaction: Transaction, amount: int, *, refund_key: str | None) -> dict[str, Any]:
        chargeback_id = 1000 + sum(len(t.refunds) for t in self.transactions.values())
        key = refund_key or f"midtrans-{chargeback_id}"
        transaction.refunds.append(
            {
                "refund_chargeback_id": chargeback_id,
                "refund_amount": f"{amount}.00",
                "created_at": "2024-01-02 10:00:00",
                "reason": "refund",
                "refund_key": key,
                "refund_method": "",
            }
        )
        refunded = sum(int(r["refund_amount"][:-3]) for r in transaction.refunds)
        transaction.transaction_status = (
            "refund" if refunded == transaction.gross_amount else "partial_refund"
        )
        transaction.status_code = "200"
        answer = {
            "status_code": "200",
            "status_message": "Success, refund request is approved",
            "transaction_id": transaction.transaction_id,
            "order_id": transaction.order_id,
            "gross_amount": f"{transaction.gross_amount}.00",
            "currency": "IDR",
            "transaction_status": transaction.transaction_status,
            "refund_chargeback_id": chargeback_id,
            "refund_amount": f"{amount}.00",
            "refund_key": key,
        }
        transaction.refund_answers[key] = answer
        return answer


def _snap_error(message: str) -> JSONResponse:
    return JSONResponse({"error_messages": [message]}, status_code=400)
