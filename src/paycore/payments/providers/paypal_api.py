"""PayPal's REST API as the adapter uses it: an OAuth token per REST app and mode, kept until
shortly before it expires, and calls whose failures become the protocol's exceptions.

Nothing here logs or raises a credential: error messages carry PayPal's error name, issue and
debug id, never our request or its headers.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx

from paycore.config import Settings
from paycore.payments.providers.base import (
    ProviderCredentials,
    ProviderRequestRefused,
    ProviderThrottled,
    ProviderUnavailable,
)
from paycore.payments.providers.common import ProviderHttp, json_object
from paycore.payments.providers.paypal_shapes import first, mapping, text

# A token is renewed this long before PayPal says it expires (clock drift, a slow request).
TOKEN_MARGIN_SECONDS = 120
# How many REST apps' tokens one process keeps (one per tenant and mode in use).
MAX_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float  # time.monotonic()


class PayPalApi:
    def __init__(self, settings: Settings, http: ProviderHttp) -> None:
        self._settings = settings
        self._http = http
        self._tokens: OrderedDict[tuple[str, bool], _Token] = OrderedDict()
        self._token_locks: dict[tuple[str, bool], asyncio.Lock] = {}

    def base_url(self, livemode: bool) -> str:
        base = self._settings.paypal_api_base_live if livemode else self._settings.paypal_api_base_test
        return base.rstrip("/")

    async def call(
        self,
        credentials: ProviderCredentials,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        response = await self.request(credentials, method, path, json_body=json_body, request_id=request_id)
        raise_for_paypal(response)
        return json_object(response, "paypal")

    async def get_order(self, credentials: ProviderCredentials, order_id: str) -> dict[str, Any]:
        return await self.call(credentials, "GET", f"/v2/checkout/orders/{path_part(order_id)}")

    async def capture_order(
        self, credentials: ProviderCredentials, order_id: str
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body). 422 is an answer, not an error: the order was captured already,
        is not approved, or its funding was declined — the caller reads the order then."""
        response = await self.request(
            credentials,
            "POST",
            f"/v2/checkout/orders/{path_part(order_id)}/capture",
            json_body={},
            # The same id for every capture of this order: PayPal replays the first answer.
            request_id=f"capture-{order_id}",
        )
        if response.status_code == httpx.codes.UNPROCESSABLE_ENTITY:
            return response.status_code, {}
        raise_for_paypal(response)
        return response.status_code, json_object(response, "paypal")

    async def verify_webhook_signature(self, credentials: ProviderCredentials, body: dict[str, Any]) -> str:
        """PayPal's verification_status; a request PayPal refuses (an unknown webhook id, a bad
        field) is a FAILURE: fail closed."""
        response = await self.request(
            credentials, "POST", "/v1/notifications/verify-webhook-signature", json_body=body
        )
        if response.status_code in (httpx.codes.BAD_REQUEST, httpx.codes.UNPROCESSABLE_ENTITY):
            return "FAILURE"
        raise_for_paypal(response)
        return text(json_object(response, "paypal").get("verification_status")) or "FAILURE"

    async def request(
        self,
        credentials: ProviderCredentials,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        """One authorized call. A 401 means our cached token died early (revoked, rotated
        secret): drop it and try once more with a new one."""
        for attempt in range(2):
            token = await self._token(credentials, renew=attempt > 0)
            headers = {"Authorization": f"Bearer {token}", "Prefer": "return=representation"}
            if request_id is not None:
                headers["PayPal-Request-Id"] = request_id
            url = f"{self.base_url(credentials.livemode)}{path}"
            try:
                response = await self._http.client.request(method, url, json=json_body, headers=headers)
            except httpx.HTTPError as exc:
                raise ProviderUnavailable(f"paypal could not be reached: {type(exc).__name__}") from None
            if response.status_code != httpx.codes.UNAUTHORIZED:
                return response
        raise ProviderRequestRefused("paypal refused our access token (HTTP 401)")

    async def _token(self, credentials: ProviderCredentials, *, renew: bool) -> str:
        client_id = credentials.require("client_id")
        key = (client_id, credentials.livemode)
        lock = self._token_locks.setdefault(key, asyncio.Lock())
        async with lock:  # one token request per app at a time, however many calls wait for it
            cached = self._tokens.get(key)
            if cached is not None and not renew and cached.expires_at > time.monotonic():
                self._tokens.move_to_end(key)
                return cached.value
            token = await self._new_token(credentials, client_id)
            self._tokens[key] = token
            self._tokens.move_to_end(key)
            while len(self._tokens) > MAX_TOKENS:
                evicted, _ = self._tokens.popitem(last=False)
                self._token_locks.pop(evicted, None)
            return token.value

    async def _new_token(self, credentials: ProviderCredentials, client_id: str) -> _Token:
        started = time.monotonic()
        try:
            response = await self._http.client.post(
                f"{self.base_url(credentials.livemode)}/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, credentials.require("client_secret")),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"paypal could not be reached: {type(exc).__name__}") from None
        if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            raise ProviderRequestRefused("paypal refused the client id and secret (HTTP 401)")
        raise_for_paypal(response)
        body = json_object(response, "paypal")
        value, lifetime = body.get("access_token"), body.get("expires_in")
        if (
            not isinstance(value, str)
            or not value
            or not isinstance(lifetime, int)
            or isinstance(lifetime, bool)
        ):
            raise ProviderUnavailable("paypal answered a token request without a token")
        # Very short lifetimes are still used once, never cached past their end.
        return _Token(value=value, expires_at=started + max(lifetime - TOKEN_MARGIN_SECONDS, 0))


def raise_for_paypal(response: httpx.Response) -> None:
    """5xx: PayPal's trouble; 429: the account's; a retry may work. Other 4xx: refused for good —
    said with PayPal's error name and issue, which name the problem without echoing what we sent."""
    status = response.status_code
    if status == httpx.codes.TOO_MANY_REQUESTS:
        raise ProviderThrottled("paypal answered HTTP 429")
    if status >= 500:
        raise ProviderUnavailable(f"paypal answered HTTP {status}")
    if status >= 400:
        raise ProviderRequestRefused(f"paypal refused the request (HTTP {status}{_error_summary(response)})")


def _error_summary(response: httpx.Response) -> str:
    try:
        body = mapping(response.json())
    except ValueError:
        return ""
    parts = [
        text(body.get("name")) or text(body.get("error")),
        text(first(body.get("details")).get("issue")),
        f"debug_id {body['debug_id']}" if text(body.get("debug_id")) else None,
    ]
    shown = [part[:100] for part in parts if part]
    return f": {', '.join(shown)}" if shown else ""


def path_part(value: str) -> str:
    """An id from our database placed in a URL path: PayPal ids are alphanumeric."""
    if not value or not value.replace("-", "").replace("_", "").isalnum() or not value.isascii():
        raise ProviderRequestRefused("not a PayPal id")
    return value
