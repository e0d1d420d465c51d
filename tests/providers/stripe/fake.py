"""A small fake of Stripe's API v1, written from its documentation: PaymentIntents and Refunds,
form-encoded bodies, `Authorization: Bearer sk_…`, `Idempotency-Key` (same key and parameters:
the first answer again, errors included; other parameters: 400 `idempotency_error`), Stripe's
error envelope. Test-only helpers play the customer (`pay`, `decline`) and Stripe's webhook
sender (`event`, `signed`, signing with the real SDK)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import stripe
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]


def _nested(body: str) -> dict[str, Any]:
    """`metadata[a]=1&automatic_payment_methods[enabled]=true` → nested dicts, as Stripe reads it."""
    params: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        target = params
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return params


def _error(status: int, kind: str, message: str, code: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return JSONResponse({"error": error}, status_code=status)


@dataclass
class FakeStripe:
    secret_key: str
    livemode: bool = False
    refund_status: str = "succeeded"
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    # Statuses to answer (once each, in order) instead of doing the work: outages on demand.
    fail_next: list[int] = field(default_factory=list)
    _replies: dict[str, tuple[dict[str, Any], JSONResponse]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app = FastAPI()
        self.app.add_api_route("/v1/payment_intents", self._create_intent, methods=["POST"])
        self.app.add_api_route("/v1/payment_intents/{intent_id}", self._get_intent, methods=["GET"])
        self.app.add_api_route("/v1/refunds", self._create_refund, methods=["POST"])
        self.app.add_api_route("/v1/refunds", self._list_refunds, methods=["GET"])

    # --- the API -------------------------------------------------------------------------------

    async def _guard(self, request: Request) -> tuple[dict[str, Any], JSONResponse | None]:
        body = (await request.body()).decode()
        params = _nested(body) if request.method == "POST" else dict(request.query_params)
        key = request.headers.get("idempotency-key")
        self.seen.append(Seen(request.method, request.url.path, key, params))
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            given = request.headers.get("authorization", "")[-4:]
            return params, _error(
                401, "invalid_request_error", f"Invalid API Key provided: sk_test_****{given}"
            )
        if self.fail_next:
            status = self.fail_next.pop(0)
            return params, _error(status, "api_error", "Something went wrong on Stripe's end.")
        return params, None

    async def _idempotent(self, request: Request, work: Any) -> JSONResponse:
        params, refused = await self._guard(request)
        if refused is not None:
            return refused  # not saved: Stripe saves only once execution began
        key = request.headers.get("idempotency-key")
        if key is not None and key in self._replies:
            saved_params, reply = self._replies[key]
            if saved_params != params:
                return _error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters.",
                )
            reply.headers["Idempotent-Replayed"] = "true"
            return reply
        reply = work(params)
        if key is not None:
            self._replies[key] = (params, reply)
        return reply

    async def _create_intent(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> JSONResponse:
            intent_id = f"pi_{secrets.token_hex(12)}"
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(params["amount"]),
                "amount_received": 0,
                "currency": params["currency"],
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
                "metadata": params.get("metadata", {}),
                "description": params.get("description"),
                "livemode": self.livemode,
                "latest_charge": None,
                "last_payment_error": None,
            }
            self.intents[intent_id] = intent
            return JSONResponse(dict(intent))

        return await self._idempotent(request, create)

    async def _get_intent(self, intent_id: str, request: Request) -> JSONResponse:
        _, refused = await self._guard(request)
        if refused is not None:
            return refused
        intent = self.intents.get(intent_id)
        if intent is None:
            return _error(
                404, "invalid_request_error", f"No such payment_intent: '{intent_id}'", "resource_missing"
            )
        return JSONResponse(intent)

    async def _create_refund(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> JSONResponse:
            intent = self.intents.get(params.get("payment_intent", ""))
            if intent is None:
                return _error(404, "invalid_request_error", "No such payment_intent", "resource_missing")
            if intent["status"] != "succeeded":
                return _error(400, "invalid_request_error", "This PaymentIntent has no charge to refund.")
            refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"])
            amount = int(params.get("amount", intent["amount_received"] - refunded))
            if amount > intent["amount_received"] - refunded:
                return _error(
                    400,
                    "invalid_request_error",
                    "Refund amount is greater than unrefunded amount.",
                    "amount_too_large",
                )
            refund = {
                "id": f"re_{secrets.token_hex(12)}",
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "charge": intent["latest_charge"],
                "status": self.refund_status,
                "metadata": params.get("metadata", {}),
                "failure_reason": None,
            }
            self.refunds[refund["id"]] = refund
            return JSONResponse(dict(refund))

        return await self._idempotent(request, create)

    async def _list_refunds(self, request: Request) -> JSONResponse:
        params, refused = await self._guard(request)
        if refused is not None:
            return refused
        # Newest first, as Stripe lists.
        matching = [
            r for r in reversed(self.refunds.values()) if r["payment_intent"] == params.get("payment_intent")
        ]
        if "starting_after" in params:
            ids = [r["id"] for r in matching]
            matching = matching[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit", 10))
        return JSONResponse(
            {
                "object": "list",
                "url": "/v1/refunds",
                "data": matching[:limit],
                "has_more": len(matching) > limit,
            }
        )

    # --- the customer and Stripe's back office (test-only) -------------------------------------

    def pay(self, intent_id: str, *, amount: int | None = None) -> dict[str, Any]:
        intent = self.intents[intent_id]
        intent.update(
            status="succeeded",
            amount_received=intent["amount"] if amount is None else amount,
            latest_charge=f"ch_{secrets.token_hex(12)}",
            last_payment_error=None,
        )
        return dict(intent)

    def decline(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents[intent_id]
        intent.update(
            status="requires_payment_method",
            last_payment_error={
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
            },
        )
        return dict(intent)

    def refund_at_stripe(self, intent_id: str, amount: int) -> dict[str, Any]:
        """A refund made in the Stripe dashboard, not through paycore."""
        intent = self.intents[intent_id]
        refund = {
            "id": f"re_{secrets.token_hex(12)}",
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "status": "succeeded",
            "metadata": {},
        }
        self.refunds[refund["id"]] = refund
        return dict(refund)

    def event(
        self, event_type: str, subject: dict[str, Any], *, livemode: bool | None = None
    ) -> dict[str, Any]:
        return {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "type": event_type,
            "livemode": self.livemode if livemode is None else livemode,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": subject},
        }


def signed(
    event: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Stripe would POST, signed by the SDK itself."""
    body = json.dumps(event).encode()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}
