"""A bounded per-process cache whose entries are trusted only as long as the invalidation channel
allows (`InvalidationChannel.trusted_for`): the long lifetime while every process's
invalidations reach this one, a short one while they may not, none before the app started.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from paycore.invalidation.channel import InvalidationChannel

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TrustedCache(Generic[K, V]):
    """Least recently used entries go first past `max_entries`. Entries remember when they were
    loaded, not when they expire, so a listener going down shortens every entry's life at once."""

    def __init__(
        self,
        channel: InvalidationChannel,
        *,
        seconds: float,
        unconfirmed_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = channel
        self._seconds = seconds
        self._unconfirmed = unconfirmed_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        # Bumped by every drop: a load that raced a drop must not store what it read before it.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        lifetime = self._channel.trusted_for(self._seconds, unconfirmed=self._unconfirmed)
        if self._clock() - entry[0] >= lifetime:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V, *, generation: int) -> None:
        """Store what was loaded when `generation` was current, unless something was dropped since."""
        if generation != self.generation or not self._channel.started:
            return
        self._entries[key] = (self._clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: K | None = None) -> None:
        """Forget one entry, or all of them."""
        self.generation += 1
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    def drop_matching(self, matches: Callable[[V], bool]) -> None:
        """Forget every entry whose value matches (rare: a revocation; a scan is fine)."""
        self.generation += 1
        for key in [key for key, (_, value) in self._entries.items() if matches(value)]:
            del self._entries[key]
