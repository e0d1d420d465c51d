"""A fake of PayPal's REST API, from its documentation (Orders v2, Payments v2, OAuth, webhook
verification), plus what a test needs to act as the customer and as PayPal's webhook sender.

Served for the sandbox API host and the host PayPal serves its webhook certificates from.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.providers.paypal.pki import Signer, pki

API_HOST = "api-m.sandbox.paypal.com"
LIVE_API_HOST = "api-m.paypal.com"
CERT_HOST = "api.sandbox.paypal.com"
CLIENT_ID = "AZfake-sandbox-client-0001"
CLIENT_SECRET = "EKfake-sandbox-secret-0001-do-not-log"
WEBHOOK_ID = "4JH86294D6297924G"
GOOD_CERT = "CERT-360caa42-fca2a594-good"
_VALUE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def _error(status: int, name: str, issue: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"name": name, "message": name.replace("_", " ").lower(), "debug_id": "f00dfeed"}
    if issue:
        body["details"] = [{"issue": issue}]
    return JSONResponse(body, status_code=status)


def _id(prefix: str = "") -> str:
    return prefix + secrets.token_hex(8).upper()


class FakePayPal:
    def __init__(self) -> None:
        self.apps = {CLIENT_ID: CLIENT_SECRET}
        self.webhook_ids = {WEBHOOK_ID}
        self.tokens: dict[str, str] = {}
        self.token_requests = 0
        self.token_lifetime = 32400
        self.orders: dict[str, dict[str, Any]] = {}
        self.replays: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.create_requests: list[dict[str, Any]] = []
        self.capture_requests: list[str | None] = []
        self.refund_requests: list[dict[str, Any]] = []
        self.verify_requests: list[dict[str, Any]] = []
        self.cert_fetches: list[str] = []
        self.next_capture_status = "COMPLETED"
        self.unavailable: set[str] = set()  # "verify", "orders", "token": answer 503
        self.signers: dict[str, Signer] = {GOOD_CERT: pki().good}
        self.sent: dict[str, bytes] = {}  # transmission id → raw body we signed
        self.hosts: list[str] = []  # the host of every API call (not certificates), in order
        self.app = self._build()

    # --- what the customer and PayPal's back office do -------------------------------------------

    def approve(self, order_id: str) -> None:
        order = self.orders[order_id]
        assert order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"), order["status"]
        order["status"] = "APPROVED"
        order["payer"] = {"email_address": "buyer@example.com", "payer_id": "PAYER1"}

    def capture_elsewhere(self, order_id: str) -> dict[str, Any]:
        """A capture not made by paycore (the merchant's dashboard, another process)."""
        status, body = self._capture(order_id, request_id=None)
        assert status == 201, body
        return body

    def capture_of(self, order_id: str) -> dict[str, Any]:
        capture: dict[str, Any] = self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0]
        return capture

    # --- webhooks ---------------------------------------------------------------------------------

    def event(
        self, event_type: str, resource: dict[str, Any], *, event_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": event_id or _id("WH-"),
            "create_time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "resource_type": "capture" if event_type.startswith("PAYMENT.CAPTURE") else "checkout-order",
            "event_type": event_type,
            "summary": event_type,
            "resource": resource,
        }

    def capture_event(self, event_type: str, order_id: str, **overrides: Any) -> dict[str, Any]:
        return self.event(event_type, {**self.capture_of(order_id), **overrides})

    def signed(
        self,
        event: dict[str, Any] | bytes,
        *,
        webhook_id: str = WEBHOOK_ID,
        cert_id: str = GOOD_CERT,
        cert_url: str | None = None,
        transmission_time: str | None = None,
        auth_algo: str = "SHA256withRSA",
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers PayPal would send, signed with the certificate under `cert_id`."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        transmission_id = secrets.token_hex(16)
        sent_at = transmission_time or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        crc = binascii.crc32(body) & 0xFFFFFFFF
        signature = self.signers[cert_id].sign(f"{transmission_id}|{sent_at}|{webhook_id}|{crc}".encode())
        self.sent[transmission_id] = body
        return body, {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": sent_at,
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-CERT-URL": cert_url or f"https://{CERT_HOST}/v1/notifications/certs/{cert_id}",
            "PAYPAL-AUTH-ALGO": auth_algo,
        }

    # --- the API ------------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    def _replay(self, kind: str, request: Request) -> tuple[str | None, JSONResponse | None]:
        request_id = request.headers.get("paypal-request-id")
        if request_id and (kind, request_id) in self.replays:
            status, body = self.replays[(kind, request_id)]
            return request_id, JSONResponse(body, status_code=status)
        return request_id, None

    def _capture(self, order_id: str, request_id: str | None) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(order_id)
        if order is None:
            return 404, {"name": "RESOURCE_NOT_FOUND"}
        if order["status"] == "COMPLETED":
            return 422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_ALREADY_CAPTURED"}]}
        if order["status"] != "APPROVED":
            return 422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_NOT_APPROVED"}]}
        unit = order["purchase_units"][0]
        capture: dict[str, Any] = {
            "id": _id("CAP"),
            "status": self.next_capture_status,
            "amount": dict(unit["amount"]),
            "final_capture": True,
            "custom_id": unit.get("custom_id"),
            "supplementary_data": {"related_ids": {"order_id": order_id}},
            "links": [
                {"rel": "up", "href": f"https://{API_HOST}/v2/checkout/orders/{order_id}", "method": "GET"}
            ],
        }
        if self.next_capture_status == "PENDING":
            capture["status_details"] = {"reason": "PENDING_REVIEW"}
        if self.next_capture_status == "DECLINED":
            capture["status_details"] = {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}
        unit["payments"] = {"captures": [capture]}
        order["status"] = "COMPLETED"
        body = json.loads(json.dumps(order))
        if request_id:
            self.replays[("capture", request_id)] = (201, body)
        return 201, body

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def note_host(request: Request, call_next: Any) -> Response:
            if not request.url.path.startswith("/v1/notifications/certs/"):
                self.hosts.append(request.url.hostname or "")
            response: Response = await call_next(request)
            return response

        @app.post("/v1/oauth2/token")
        async def token(request: Request) -> Response:
            self.token_requests += 1
            if "token" in self.unavailable:
                return _error(503, "SERVICE_UNAVAILABLE")
            form = (await request.body()).decode()
            header = request.headers.get("authorization", "")
            try:
                client_id, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if form != "grant_type=client_credentials" or self.apps.get(client_id) != secret:
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "Client Authentication failed"},
                    status_code=401,
                )
            value = secrets.token_urlsafe(24)
            self.tokens[value] = client_id
            return JSONResponse(
                {"access_token": value, "token_type": "Bearer", "expires_in": self.token_lifetime}
            )

        @app.post("/v2/checkout/orders")
        async def create_order(request: Request) -> Response:
            if not self._authorized(request):
                return _error(401, "AUTHENTICATION_FAILURE")
            if "orders" in self.unavailable:
                return _error(503, "INTERNAL_SERVER_ERROR")
            request_id, replay = self._replay("create", request)
            if replay is not None:
                return replay
            body = await request.json()
            self.create_requests.append({"request_id": request_id, "body": body})
            units = body.get("purchase_units") or []
            amount = (units[0] if units else {}).get("amount", {})
            if (
                body.get("intent") != "CAPTURE"
                or len(units) != 1
                or not _VALUE.match(str(amount.get("value")))
            ):
                return _error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE")
            order_id = _id()
            order = {
                "id": order_id,
                "intent": "CAPTURE",
                "status": "PAYER_ACTION_REQUIRED",
                "purchase_units": [dict(units[0])],
                "payment_source": body.get("payment_source"),
                "links": [
                    {
                        "rel": "self",
                        "href": f"https://{API_HOST}/v2/checkout/orders/{order_id}",
                        "method": "GET",
                    },
                    {
                        "rel": "payer-action",
                        "href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                        "method": "GET",
                    },
                ],
            }
            self.orders[order_id] = order
            if request_id:
                self.replays[("create", request_id)] = (200, order)
            return JSONResponse(order, status_code=200)

        @app.get("/v2/checkout/orders/{order_id}")
        async def get_order(order_id: str, request: Request) -> Response:
            if not self._authorized(request):
                return _error(401, "AUTHENTICATION_FAILURE")
            if "orders" in self.unavailable:
                return _error(503, "INTERNAL_SERVER_ERROR")
            order = self.orders.get(order_id)
            if order is None:
                return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
            return JSONResponse(order)

        @app.post("/v2/checkout/orders/{order_id}/capture")
        async def capture(order_id: str, request: Request) -> Response:
            if not self._authorized(request):
                return _error(401, "AUTHENTICATION_FAILURE")
            if "orders" in self.unavailable:
                return _error(503, "INTERNAL_SERVER_ERROR")
            request_id, replay = self._replay("capture", request)
            self.capture_requests.append(request_id)
            if replay is not None:
                return replay
            status, body = self._capture(order_id, request_id)
            return JSONResponse(body, status_code=status)

        @app.post("/v2/payments/captures/{capture_id}/refund")
        async def refund(capture_id: str, request: Request) -> Response:
            if not self._authorized(request):
                return _error(401, "AUTHENTICATION_FAILURE")
            request_id, replay = self._replay("refund", request)
            if replay is not None:
                return replay
            body = await request.json()
            self.refund_requests.append({"request_id": request_id, "capture_id": capture_id, "body": body})
            found = [
                (order["id"], unit["payments"]["captures"][0])
                for order in self.orders.values()
                for unit in order["purchase_units"]
                if unit.get("payments", {}).get("captures", [{}])[0].get("id") == capture_id
            ]
            if not found:
                return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
            captured = found[0][1]
            refunded = sum(int(r["amount"]["value"].replace(".", "")) for r in captured.get("refunds", []))
            asked = body["amount"]
            if asked["currency_code"] != captured["amount"]["currency_code"]:
                return _error(422, "UNPROCESSABLE_ENTITY", "REFUND_CURRENCY_MISMATCH")
            total = int(captured["amount"]["value"].replace(".", ""))
            if refunded + int(asked["value"].replace(".", "")) > total:
                return _error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
            made = {
                "id": _id("RF"),
                "status": "COMPLETED",
                "amount": asked,
                "custom_id": body.get("custom_id"),
                "invoice_id": body.get("invoice_id"),
                "links": [
                    {
                        "rel": "up",
                        "href": f"https://{API_HOST}/v2/payments/captures/{capture_id}",
                        "method": "GET",
                    }
                ],
            }
            captured.setdefault("refunds", []).append(made)
            left = total - refunded - int(asked["value"].replace(".", ""))
            captured["status"] = "REFUNDED" if left == 0 else "PARTIALLY_REFUNDED"
            if request_id:
                self.replays[("refund", request_id)] = (201, made)
            return JSONResponse(made, status_code=201)

        @app.post("/v1/notifications/verify-webhook-signature")
        async def verify(request: Request) -> Response:
            if not self._authorized(request):
                return _error(401, "AUTHENTICATION_FAILURE")
            if "verify" in self.unavailable:
                return _error(503, "INTERNAL_SERVICE_ERROR")
            body = await request.json()
            self.verify_requests.append(body)
            fields = (
                "auth_algo",
                "cert_url",
                "transmission_id",
                "transmission_sig",
                "transmission_time",
                "webhook_id",
            )
            if any(not isinstance(body.get(name), str) for name in fields) or not isinstance(
                body.get("webhook_event"), dict
            ):
                return _error(400, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER")
            if body["webhook_id"] not in self.webhook_ids:
                return _error(400, "INVALID_RESOURCE_ID", "INVALID_RESOURCE_ID")
            return JSONResponse({"verification_status": "SUCCESS" if self._genuine(body) else "FAILURE"})

        @app.get("/v1/notifications/certs/{cert_id}")
        async def certificate(cert_id: str) -> Response:
            self.cert_fetches.append(cert_id)
            signer = self.signers.get(cert_id)
            if signer is None:
                return _error(404, "RESOURCE_NOT_FOUND")
            return Response(signer.chain_pem, media_type="application/x-pem-file")

        return app

    def _genuine(self, body: dict[str, Any]) -> bool:
        """As PayPal would: the event is what we sent under that transmission, signed by our key."""
        raw = self.sent.get(body["transmission_id"])
        cert_id = body["cert_url"].rsplit("/", 1)[-1]
        signer = self.signers.get(cert_id)
        if raw is None or signer is None or json.loads(raw) != body["webhook_event"]:
            return False
        crc = binascii.crc32(raw) & 0xFFFFFFFF
        message = f"{body['transmission_id']}|{body['transmission_time']}|{body['webhook_id']}|{crc}".encode()
        key = x509.load_pem_x509_certificates(signer.chain_pem)[0].public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(
                base64.b64decode(body["transmission_sig"]), message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, binascii.Error):
            return False
        return True
