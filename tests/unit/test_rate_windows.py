"""The rate limiter's sliding-window arithmetic and its bounded memory, on a set clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paycore.ratelimit_counters import MemoryCounters, Rate, wait_seconds, window_keys

PER_MINUTE = Rate(amount=10, seconds=60)


class TestWindowKeys:
    def test_keys_name_the_fixed_windows_and_the_current_one_outlives_the_next(self) -> None:
        keys = window_keys(PER_MINUTE, "merchant:key:k1", 1_800_000_015.0)
        assert (keys.previous, keys.current) == ("merchant:key:k1:29999999", "merchant:key:k1:30000000")
        assert keys.elapsed == 15.0
        assert keys.ttl == 105  # to the end of the next minute


class TestWaitSeconds:
    def test_room_left_is_no_wait(self) -> None:
        assert wait_seconds(PER_MINUTE, previous=0, current=9, elapsed=30) is None

    def test_the_previous_window_weighs_by_how_much_of_it_is_still_inside(self) -> None:
        # Halfway through: 10 × 0.5 + 4 = 9, one more fits; with 5 in this minute it does not.
        assert wait_seconds(PER_MINUTE, previous=10, current=4, elapsed=30) is None
        assert wait_seconds(PER_MINUTE, previous=10, current=5, elapsed=30) == 6

    def test_just_past_a_boundary_the_last_minute_still_counts(self) -> None:
        assert wait_seconds(Rate(2, 60), previous=2, current=0, elapsed=0.1) == 30

    @given(
        previous=st.integers(0, 50),
        current=st.integers(0, 50),
        elapsed=st.floats(0, 59.999),
    )
    def test_after_the_wait_one_more_fits(self, previous: int, current: int, elapsed: float) -> None:
        wait = wait_seconds(PER_MINUTE, previous, current, elapsed)
        if wait is None:
            return
        later = elapsed + wait
        if later < 60:
            weighted = previous * (60 - later) / 60 + current
        else:  # the current window has become the previous one
            weighted = current * (60 - (later - 60)) / 60 if later < 120 else 0
        assert weighted + 1 <= PER_MINUTE.amount + 1e-9


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class TestMemoryCounters:
    async def test_counts_expire_on_the_clock(self) -> None:
        clock = ManualClock()
        counters = MemoryCounters(max_keys=10, clock=clock)
        await counters.increment("a", ttl=5)
        await counters.increment("a", ttl=5)
        assert await counters.read(["a", "never"]) == [2, 0]
        clock.now += 5
        assert await counters.read(["a"]) == [0]

    async def test_reading_creates_nothing(self) -> None:
        counters = MemoryCounters(max_keys=10, clock=ManualClock())
        await counters.read([f"k{number}" for number in range(100)])
        assert len(counters) == 0

    @pytest.mark.parametrize("max_keys", [1, 3])
    async def test_past_the_cap_the_oldest_counter_goes(self, max_keys: int) -> None:
        counters = MemoryCounters(max_keys=max_keys, clock=ManualClock())
        for number in range(10):
            await counters.increment(f"k{number}", ttl=60)
        assert len(counters) == max_keys
        assert await counters.read(["k9", "k0"]) == [1, 0]
