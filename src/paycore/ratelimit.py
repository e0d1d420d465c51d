"""Rate limits by class of caller.

Counts are kept in process memory (bounded) by default and in Redis when `PAYCORE_REDIS_URL` is
set, so a limit holds across processes and hosts (`ratelimit_counters.py`). Classes, each a
`limits`-style rate string in settings:
- sign-in: per client address here, and per account in the sign-in form (`admin/endpoints.py`);
- storefront: per client address — publishable keys, no key, and any key that did not
  authenticate (a made-up bearer string must not buy a bucket of its own);
- merchant API: per API key, only once the key has authenticated;
- webhooks: per (provider, tenant) for requests the provider's signature proved, and per source
  address for everything else (unknown tenant, bad signature): junk spends only its sender's budget,
  never a tenant's. A provider's retries after an outage come in a burst, so the rate is generous.
Health, readiness, metrics and the API docs are not limited. The client address is the socket's
peer, or `X-Forwarded-For` from `PAYCORE_TRUSTED_PROXIES` (uvicorn rewrites it before us); IPv6
addresses count per /64.

If the counters fail (Redis down) the request goes through and the failure is logged and
counted: a rate limit protects paycore; it must not become the outage.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from enum import StrEnum

from limits import parse
from redis.asyncio import Redis
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.auth.dependencies import CONTEXT_SCOPE_KEY, authenticate_headers
from paycore.auth.keys import parse_api_key
from paycore.config import Settings
from paycore.db import Database
from paycore.errors import AuthenticationFailed, RateLimited
from paycore.logging import get_logger
from paycore.middleware import send_error
from paycore.ops.metrics import RATE_LIMITED, RATE_LIMITER_ERRORS
from paycore.platform.service import authenticate_platform_key
from paycore.ratelimit_counters import (
    Clock,
    Counters,
    MemoryCounters,
    Rate,
    RedisCounters,
    wait_seconds,
    window_keys,
)

log = get_logger(__name__)

_UNLIMITED_PREFIXES = ("/health", "/ready", "/metrics", "/docs", "/redoc", "/openapi.json")


class LimitClass(StrEnum):
    SIGNIN = "signin"
    STOREFRONT = "storefront"
    MERCHANT = "merchant"
    WEBHOOKS = "webhooks"


@dataclass(frozen=True, slots=True)
class Bucket:
    limit_class: LimitClass
    key: str


def _rate(text: str) -> Rate:
    item = parse(text)
    return Rate(amount=item.amount, seconds=item.get_expiry())


class RateLimiter:
    """Buckets and their counts. `clock` is the only time source: tests replace it."""

    def __init__(self, settings: Settings, *, clock: Clock = time.time) -> None:
        self.clock = clock
        self.counters: Counters
        if settings.redis_url is not None:
            # Short timeouts: a slow Redis must not hold requests up (they fail open).
            redis = Redis.from_url(
                settings.redis_url.get_secret_value(), socket_timeout=0.5, socket_connect_timeout=0.5
            )
            self.counters = RedisCounters(redis, prefix="paycore-ratelimit")
        else:
            self.counters = MemoryCounters(
                max_keys=settings.rate_limit_memory_max_keys, clock=lambda: self.clock()
            )
        self._rates: dict[LimitClass, Rate] = {
            LimitClass.SIGNIN: _rate(settings.rate_limit_signin),
            LimitClass.STOREFRONT: _rate(settings.rate_limit_storefront),
            LimitClass.MERCHANT: _rate(settings.rate_limit_merchant_api),
            LimitClass.WEBHOOKS: _rate(settings.rate_limit_webhooks),
        }

    async def aclose(self) -> None:
        await self.counters.aclose()

    async def peek(self, bucket: Bucket) -> int | None:
        """None when one more request fits in `bucket`; otherwise the seconds to wait. Counts nothing."""
        rate = self._rates[bucket.limit_class]
        keys = window_keys(rate, f"{bucket.limit_class.value}:{bucket.key}", self.clock())
        previous, current = await self.counters.read([keys.previous, keys.current])
        return wait_seconds(rate, previous, current, keys.elapsed)

    async def count(self, bucket: Bucket) -> None:
        """Count one request against `bucket`, whether or not it fitted."""
        rate = self._rates[bucket.limit_class]
        keys = window_keys(rate, f"{bucket.limit_class.value}:{bucket.key}", self.clock())
        await self.counters.increment(keys.current, keys.ttl)

    async def retry_after(self, bucket: Bucket) -> int | None:
        """None (and the request is counted) when it may go on; otherwise the seconds to wait."""
        wait = await self.peek(bucket)
        if wait is None:
            await self.count(bucket)
        return wait


def _client_address(scope: Scope) -> str:
    """The caller's address as a bucket key. IPv6 counts per /64: one host or home is handed a
    whole /64, and one address per request from it must not buy one bucket per request."""
    client = scope.get("client")
    if not client:
        return "unknown"
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return str(client[0])  # not an IP (a unix socket, a test transport): as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)  # ::ffff:192.0.2.1 is 192.0.2.1
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _webhook_buckets(scope: Scope) -> tuple[Bucket, Bucket]:
    """(the source address's bucket, the (provider, tenant) bucket) of `/webhooks/{p}/{t}`."""
    _, _, provider, tenant = [*scope["path"].split("/", 4), "", ""][:4]
    return (
        Bucket(LimitClass.WEBHOOKS, f"ip:{_client_address(scope)}"),
        Bucket(LimitClass.WEBHOOKS, f"tenant:{provider}:{tenant}"),
    )


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"] if scope["type"] == "http" else ""
        if not path or path.startswith(_UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
        elif path.startswith("/webhooks/"):
            await self._webhook(scope, receive, send)
        else:
            await self._request(scope, receive, send)

    async def _request(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].startswith("/admin/login"):
            bucket = Bucket(LimitClass.SIGNIN, f"ip:{_client_address(scope)}")
        else:
            bucket = await self._caller_bucket(scope)
        try:
            wait = await self.limiter.retry_after(bucket)
        except Exception as exc:  # noqa: BLE001 (fail open: the limiter must not take paycore down)
            _failed_open(exc)
            wait = None
        if wait is None:
            await self.app(scope, receive, send)
        else:
            await _refuse(send, bucket, wait)

    async def _caller_bucket(self, scope: Scope) -> Bucket:
        """The key's bucket once the key has authenticated; the address's until then."""
        headers = Headers(scope=scope)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token and not token.startswith("pk_"):
            key_id = await self._authenticated_key(scope, headers, token)
            if key_id is not None:
                return Bucket(LimitClass.MERCHANT, f"key:{key_id}")
        return Bucket(LimitClass.STOREFRONT, f"ip:{_client_address(scope)}")

    async def _authenticated_key(self, scope: Scope, headers: Headers, token: str) -> str | None:
        database: Database = scope["app"].state.database
        try:
            if token.startswith("plat_"):
                async with database.session(write=False) as session:
                    return f"platform:{(await authenticate_platform_key(session, token)).id}"
            if parse_api_key(token) is None:
                return None  # not a key's shape: no database round trip
            context = await authenticate_headers(
                database,
                scope["app"].state.api_keys,
                authorization=headers.get("authorization"),
                ip=_client_address(scope),
                user_agent=headers.get("user-agent"),
            )
        except AuthenticationFailed:
            return None
        except Exception as exc:  # noqa: BLE001 (the route meets the same failure and answers it)
            log.warning("rate_limit_authentication_failed", error=repr(exc))
            return None
        # The route reads it back instead of authenticating again.
        scope[CONTEXT_SCOPE_KEY] = context
        return context.key_id

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refused when either bucket is spent; counted, once the answer shows whether the
        provider's signature proved the request, against the tenant's bucket or the sender's."""
        address, tenant = _webhook_buckets(scope)
        try:
            for bucket in (address, tenant):
                wait = await self.limiter.peek(bucket)
                if wait is not None:
                    await _refuse(send, bucket, wait)
                    return
        except Exception as exc:  # noqa: BLE001 (fail open)
            _failed_open(exc)
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # Only a verified event answers 2xx; anything else was not proven to be the provider's.
            try:
                await self.limiter.count(tenant if 200 <= status < 300 else address)
            except Exception as exc:  # noqa: BLE001 (fail open)
                _failed_open(exc)


def _failed_open(exc: Exception) -> None:
    RATE_LIMITER_ERRORS.inc()
    log.warning("rate_limiter_unavailable", error=repr(exc))


async def _refuse(send: Send, bucket: Bucket, wait: int) -> None:
    RATE_LIMITED.labels(limit_class=bucket.limit_class.value).inc()
    await send_error(
        send,
        RateLimited(
            f"Too many requests; try again in {wait} second{'' if wait == 1 else 's'}.",
            headers={"Retry-After": str(wait)},
        ),
    )
