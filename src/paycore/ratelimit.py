"""Rate limits by class of caller, with the `limits` package.

Storage is in memory (per process) by default and in Redis when `PAYCORE_REDIS_URL` is set, so a
limit holds across processes and hosts. Classes, each a `limits` string in settings:
- sign-in: per client IP here, and per account in the sign-in form (`admin/endpoints.py`);
- storefront: per client IP — publishable keys and pages a customer's browser calls;
- merchant API: per secret key (its SHA-256: the key itself is never a storage key);
- webhooks: per provider, generous — a provider's retries after an outage come in a burst.
Health, readiness, metrics and the API docs are not limited.

If the limiter's storage fails (Redis down) the request goes through and the failure is logged
and counted: a rate limit protects paycore; it must not become the outage.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import ConnectionPool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from paycore.config import Settings
from paycore.errors import RateLimited
from paycore.logging import get_logger
from paycore.middleware import send_error
from paycore.ops.metrics import RATE_LIMITED, RATE_LIMITER_ERRORS

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


def bucket_for(scope: Scope) -> Bucket | None:
    """Which limit a request counts against, from its path and credentials (no database)."""
    path: str = scope["path"]
    if path.startswith(_UNLIMITED_PREFIXES):
        return None
    client = scope.get("client")
    ip = client[0] if client else "unknown"
    if path.startswith("/webhooks/"):
        provider = path.split("/", 3)[2] or "unknown"
        return Bucket(LimitClass.WEBHOOKS, f"provider:{provider}")
    if path.startswith("/admin/login"):
        return Bucket(LimitClass.SIGNIN, f"ip:{ip}")
    authorization = Headers(scope=scope).get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token and not token.startswith("pk_"):
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        return Bucket(LimitClass.MERCHANT, f"key:{digest}")
    return Bucket(LimitClass.STOREFRONT, f"ip:{ip}")


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self._pool: ConnectionPool | None = None
        storage: Storage = MemoryStorage()
        if settings.redis_url is not None:
            url = settings.redis_url.get_secret_value()
            # Our own pool: short timeouts (a slow Redis must not hold requests up: they fail
            # open), and something to close at shutdown.
            self._pool = ConnectionPool.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            storage = RedisStorage(
                f"async+{url}",
                implementation="redispy",
                key_prefix="paycore-ratelimit",
                connection_pool=self._pool,  # type: ignore[arg-type]  # options are typed as scalars
            )
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._items: dict[LimitClass, RateLimitItem] = {
            LimitClass.SIGNIN: parse(settings.rate_limit_signin),
            LimitClass.STOREFRONT: parse(settings.rate_limit_storefront),
            LimitClass.MERCHANT: parse(settings.rate_limit_merchant_api),
            LimitClass.WEBHOOKS: parse(settings.rate_limit_webhooks),
        }

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    async def retry_after(self, bucket: Bucket) -> int | None:
        """None when the request may go on; otherwise the seconds to wait before trying again."""
        item = self._items[bucket.limit_class]
        if await self._limiter.hit(item, bucket.limit_class.value, bucket.key):
            return None
        stats = await self._limiter.get_window_stats(item, bucket.limit_class.value, bucket.key)
        return max(1, math.ceil(stats.reset_time - time.time()))


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bucket = bucket_for(scope) if scope["type"] == "http" else None
        if bucket is None:
            await self.app(scope, receive, send)
            return
        try:
            wait = await self.limiter.retry_after(bucket)
        except Exception as exc:  # noqa: BLE001 (fail open: the limiter must not take paycore down)
            RATE_LIMITER_ERRORS.inc()
            log.warning("rate_limiter_unavailable", error=repr(exc))
            wait = None
        if wait is None:
            await self.app(scope, receive, send)
            return
        RATE_LIMITED.labels(limit_class=bucket.limit_class.value).inc()
        await send_error(
            send,
            RateLimited(
                f"Too many requests; try again in {wait} seconds.", headers={"Retry-After": str(wait)}
            ),
        )
