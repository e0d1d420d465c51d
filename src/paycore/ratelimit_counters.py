"""The rate limiter's arithmetic and its counters: a sliding window over two fixed windows.

A limit of `amount` per `seconds` keeps one counter per bucket per fixed window (window number =
`now // seconds`). A request fits when `previous × (share of the previous window still inside the
sliding window) + current + 1 ≤ amount` — an estimate of the count over the last `seconds`, exact
when requests are spread evenly. The window number and every expiry come from the limiter's
clock, never from the storage's, so tests set the time (`ManualClock`) instead of sleeping.

Counters live in process memory, bounded (`MemoryCounters`: past `max_keys` the oldest counter is
dropped), or in Redis (`RedisCounters`) so that every process and host shares them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from paycore.ops.metrics import RATE_LIMIT_EVICTIONS

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Rate:
    amount: int
    seconds: int


@dataclass(frozen=True, slots=True)
class WindowKeys:
    previous: str
    current: str
    elapsed: float  # seconds since the current fixed window began
    ttl: int  # seconds the current counter must outlive: to the end of the next window


def window_keys(rate: Rate, key: str, now: float) -> WindowKeys:
    number = math.floor(now / rate.seconds)
    elapsed = now - number * rate.seconds
    ttl = math.ceil(2 * rate.seconds - elapsed)
    return WindowKeys(f"{key}:{number - 1}", f"{key}:{number}", elapsed, max(ttl, 1))


def wait_seconds(rate: Rate, previous: int, current: int, elapsed: float) -> int | None:
    """None when one more request fits; otherwise the whole seconds until it would."""
    remaining = rate.seconds - elapsed
    if previous * remaining / rate.seconds + current + 1 <= rate.amount:
        return None
    if current + 1 > rate.amount:
        # Only the next window frees room: there, this window's count fades as it slides out.
        fade = rate.seconds * (1 - (rate.amount - 1) / current)
        wait = remaining + fade
    else:
        wait = remaining - (rate.amount - 1 - current) * rate.seconds / previous
    return max(1, math.ceil(wait))


class Counters(Protocol):
    async def read(self, keys: Sequence[str]) -> list[int]:
        """The counts under `keys` (0 for a key never counted or expired); creates nothing."""
        ...

    async def increment(self, key: str, ttl: int) -> None:
        """Add one under `key`; a new counter lives `ttl` seconds from now."""
        ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """Counters of one process, at most `max_keys` of them: a caller who makes up a new bucket per
    request (a new address, a new tenant slug) evicts the oldest counters instead of growing the
    process without bound. Evictions are counted (`paycore_rate_limit_evictions_total`)."""

    def __init__(self, *, max_keys: int, clock: Clock) -> None:
        self._max_keys = max_keys
        self._clock = clock
        # key -> (count, expires at); insertion order is creation order, so the oldest is first.
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    async def read(self, keys: Sequence[str]) -> list[int]:
        now = self._clock()
        found = [self._counts.get(key) for key in keys]
        return [entry[0] if entry is not None and entry[1] > now else 0 for entry in found]

    async def increment(self, key: str, ttl: int) -> None:
        now = self._clock()
        entry = self._counts.get(key)
        if entry is not None and entry[1] > now:
            self._counts[key] = (entry[0] + 1, entry[1])
            return
        self._counts.pop(key, None)
        self._drop_expired_oldest(now)
        while len(self._counts) >= self._max_keys:
            self._counts.popitem(last=False)
            RATE_LIMIT_EVICTIONS.inc()
        self._counts[key] = (1, now + ttl)

    def _drop_expired_oldest(self, now: float) -> None:
        # Counters are created in time order, so expired ones gather at the front (windows of
        # different lengths mix a little; the size cap bounds what this misses).
        while self._counts:
            _, (_, expires) = next(iter(self._counts.items()))
            if expires > now:
                return
            self._counts.popitem(last=False)

    async def aclose(self) -> None:
        return None  # nothing outside this process to let go of


class RedisCounters:
    """Counters shared by every process through Redis; each key expires on its own."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def read(self, keys: Sequence[str]) -> list[int]:
        values = await self._redis.mget([f"{self._prefix}:{key}" for key in keys])
        return [int(value) if value is not None else 0 for value in values]

    async def increment(self, key: str, ttl: int) -> None:
        name = f"{self._prefix}:{key}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, ttl)  # the same instant every time: the end of the next window
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()
