"""The Stripe SDK, wired to paycore: its HTTP through `ProviderHttp`, its errors as ours.

`stripe.HTTPXClient` makes its own `httpx.AsyncClient` and takes no transport, so it could not be
pointed at the test fakes nor share the pooled client and its timeout. `stripe.HTTPClient` is the
SDK's documented base for custom clients: `PaycoreHttpClient` implements its async half over
`ProviderHttp`. The SDK keeps everything else (encoding, retries with the same idempotency key,
`Stripe-Should-Retry`, error parsing).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import stripe

from paycore.payments.providers.base import ProviderRequestRefused, ProviderThrottled, ProviderUnavailable
from paycore.payments.providers.common import ERROR_EXCERPT, ProviderHttp

T = TypeVar("T")

# The SDK logs request and response bodies at DEBUG on the `stripe` logger: a PaymentIntent's
# client secret (which Stripe says must never be logged) and customers' details. paycore's
# `configure_logging` keeps it at INFO or above; this holds it there even before that runs.
logging.getLogger("stripe").setLevel(max(logging.INFO, logging.getLogger("stripe").level))

# Any Stripe key that might appear in a provider message (Stripe masks them, but we do not rely on it).
_KEY_SHAPE = re.compile(r"\b(?:sk|rk|pk|whsec)_[A-Za-z0-9_*]*")


class PaycoreHttpClient(stripe.HTTPClient):
    """The SDK's async HTTP over paycore's pooled client (and, in tests, the fakes' transport)."""

    name = "paycore-httpx"

    def __init__(self, http: ProviderHttp) -> None:
        super().__init__()
        self._http = http

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = await self._http.client.request(
                method.upper(), url, headers=dict(headers), content=post_data
            )
        except httpx.HTTPError as exc:
            # The SDK retries these (with the same idempotency key) and then raises it.
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # untyped in the SDK
                f"Stripe could not be reached: {type(exc).__name__}", should_retry=True
            ) from None
        return response.content, response.status_code, response.headers

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)

    async def close_async(self) -> None:
        pass  # the pooled client belongs to ProviderHttp, closed with the registry

    def close(self) -> None:
        pass


def scrub(text: str) -> str:
    return _KEY_SHAPE.sub("[key]", text)[:ERROR_EXCERPT]


def mapped_error(exc: stripe.StripeError) -> Exception:
    """Connection trouble and 5xx (Stripe's), 429 and 409 (a request in flight with the same
    idempotency key: the account's): a retry may work. Any other 4xx: Stripe refused for good,
    with its reason and no key."""
    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError) or status is None:
        return ProviderUnavailable("stripe could not be reached")
    if status in (409, 429):
        return ProviderThrottled(f"stripe answered HTTP {status}")
    if status >= 500:
        return ProviderUnavailable(f"stripe answered HTTP {status}")
    detail = exc.user_message or "no reason given"
    kind = exc.code or (exc.error.type if exc.error is not None else None)
    code = f", {kind}" if kind else ""
    return ProviderRequestRefused(scrub(f"stripe refused the request (HTTP {status}{code}): {detail}"))


async def call_stripe(operation: Callable[[], Awaitable[T]]) -> T:
    try:
        return await operation()
    except stripe.StripeError as exc:
        # `from None`: the SDK's exception carries the raw response body.
        raise mapped_error(exc) from None
