"""The circuit breaker, on a fake clock: closed → open → half-open → closed or open again."""

from __future__ import annotations

import asyncio
from itertools import count

import pytest
from prometheus_client import REGISTRY

from paycore.circuit import BreakerKey, Breakers, CircuitBreaker, CircuitOpen, CircuitState

_targets = count()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Flaky(Exception):
    """What the guarded call raises when the target fails."""


def unique_target() -> str:
    """Metrics are process-wide: every test gets its own target label."""
    return f"test:circuit:{next(_targets)}"


def make_breaker(
    clock: FakeClock, *, threshold: int = 3, reset: float = 30.0, target: str | None = None
) -> CircuitBreaker:
    return CircuitBreaker(
        BreakerKey.shared(target or unique_target()),
        failure_threshold=threshold,
        reset_seconds=reset,
        clock=clock,
    )


async def fail_through(breaker: CircuitBreaker, error: type[BaseException] = Flaky) -> None:
    with pytest.raises(error):
        async with breaker.guard(failures=(Flaky,)):
            raise error("down")


async def succeed_through(breaker: CircuitBreaker) -> None:
    async with breaker.guard(failures=(Flaky,)):
        pass


def gauge(target: str) -> float | None:
    return REGISTRY.get_sample_value("paycore_circuit_state", {"target": target})


def rejections(target: str, scope: str = "shared") -> float:
    labels = {"target": target, "scope": scope}
    return REGISTRY.get_sample_value("paycore_circuit_rejections_total", labels) or 0.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class TestOpening:
    async def test_opens_after_threshold_consecutive_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=3)
        for _ in range(2):
            await fail_through(breaker)
        assert breaker.state is CircuitState.CLOSED
        breaker.before_call()  # still lets calls through

        await fail_through(breaker)
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpen):
            breaker.before_call()

    async def test_open_breaker_refuses_without_running_the_block(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=1)
        await fail_through(breaker)
        ran = False
        with pytest.raises(CircuitOpen):
            async with breaker.guard(failures=(Flaky,)):
                ran = True
        assert ran is False

    async def test_retry_after_counts_down_to_the_probe(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=1, reset=30)
        await fail_through(breaker)

        with pytest.raises(CircuitOpen) as at_once:
            breaker.before_call()
        assert at_once.value.retry_after == pytest.approx(30)
        assert at_once.value.target == breaker.target
        assert breaker.target in str(at_once.value)

        clock.advance(12)
        with pytest.raises(CircuitOpen) as later:
            breaker.before_call()
        assert later.value.retry_after == pytest.approx(18)

    async def test_refusals_do_not_extend_the_open_period(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=1, reset=30)
        await fail_through(breaker)
        for _ in range(5):
            clock.advance(5)
            with pytest.raises(CircuitOpen):
                breaker.before_call()
        clock.advance(5)  # 30 s after opening, however many calls were refused meanwhile
        assert breaker.state is CircuitState.HALF_OPEN

    async def test_a_success_resets_the_failure_count(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=3)
        await fail_through(breaker)
        await fail_through(breaker)
        await succeed_through(breaker)
        await fail_through(breaker)
        await fail_through(breaker)
        assert breaker.state is CircuitState.CLOSED  # 2 + 2 failures, never 3 in a row
        await fail_through(breaker)
        assert breaker.state is CircuitState.OPEN

    async def test_exceptions_not_listed_as_failures_do_not_count(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=2)
        for _ in range(5):
            await fail_through(breaker, error=KeyError)
        assert breaker.state is CircuitState.CLOSED
        breaker.before_call()


class TestHalfOpen:
    async def test_half_open_after_the_reset_period(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=1, reset=30)
        await fail_through(breaker)
        clock.advance(29.9)
        assert breaker.state is CircuitState.OPEN
        clock.advance(0.1)
        assert breaker.state is CircuitState.HALF_OPEN

    async def test_exactly_one_probe_goes_through(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=1, reset=30)
        await fail_through(breaker)
        clock.advance(30)

        probe_inside = asyncio.Event()
        release_probe = asyncio.Event()
        probes = 0

        async def probe() -> None:
            nonlocal probes
            async with breaker.guard(failures=(Flaky,)):
                probes += 1
                probe_inside.set()
                await release_probe.wait()

        task = asyncio.create_task(probe())
        await probe_inside.wait()

        second_ran = False
        with pytest.raises(CircuitOpen):
            async with breaker.guard(failures=(Flaky,)):
                second_ran = True
        assert second_ran is False

        release_probe.set()
        await task
        assert probes == 1
        assert breaker.state is CircuitState.CLOSED

    async def test_successful_probe_closes_and_clears_the_failures(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=3, reset=30)
        for _ in range(3):
            await fail_through(breaker)
        clock.advance(30)
        await succeed_through(breaker)
        assert breaker.state is CircuitState.CLOSED
        # the count starts again from zero: two failures do not re-open it
        await fail_through(breaker)
        await fail_through(breaker)
        assert breaker.state is CircuitState.CLOSED
        breaker.before_call()

    async def test_failed_probe_reopens_for_a_full_period(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=3, reset=30)
        for _ in range(3):
            await fail_through(breaker)
        clock.advance(45)  # well past the reset time
        await fail_through(breaker)  # the probe fails

        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpen) as refused:
            breaker.before_call()
        assert refused.value.retry_after == pytest.approx(30)
        clock.advance(29)
        assert breaker.state is CircuitState.OPEN
        clock.advance(1)
        assert breaker.state is CircuitState.HALF_OPEN

    async def test_probe_failing_for_another_reason_frees_the_probe_slot(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=1, reset=30)
        await fail_through(breaker)
        clock.advance(30)
        await fail_through(breaker, error=KeyError)  # our bug, not the target's
        assert breaker.state is CircuitState.HALF_OPEN  # not re-opened
        await succeed_through(breaker)  # the next caller may probe
        assert breaker.state is CircuitState.CLOSED

    async def test_cancelled_probe_frees_the_probe_slot(self, clock: FakeClock) -> None:
        breaker = make_breaker(clock, threshold=1, reset=30)
        await fail_through(breaker)
        clock.advance(30)
        started = asyncio.Event()

        async def hanging_probe() -> None:
            async with breaker.guard(failures=(Flaky,)):
                started.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(hanging_probe())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert breaker.state is CircuitState.HALF_OPEN
        await succeed_through(breaker)
        assert breaker.state is CircuitState.CLOSED


class TestMetrics:
    async def test_state_gauge_follows_the_breaker(self, clock: FakeClock) -> None:
        target = unique_target()
        breaker = make_breaker(clock, threshold=2, reset=30, target=target)
        assert gauge(target) == 0

        await fail_through(breaker)
        assert gauge(target) == 0
        await fail_through(breaker)
        assert gauge(target) == 2

        clock.advance(30)
        breaker.before_call()  # the probe
        assert gauge(target) == 1
        breaker.record_failure()
        assert gauge(target) == 2

        clock.advance(30)
        await succeed_through(breaker)
        assert gauge(target) == 0

    async def test_refused_calls_are_counted(self, clock: FakeClock) -> None:
        target = unique_target()
        breaker = make_breaker(clock, threshold=1, target=target)
        await fail_through(breaker)
        assert rejections(target) == 0
        for _ in range(3):
            with pytest.raises(CircuitOpen):
                breaker.before_call()
        assert rejections(target) == 3


class TestBreakers:
    async def test_one_shared_breaker_per_target_with_the_deployment_settings(self) -> None:
        breakers = Breakers(failure_threshold=4, reset_seconds=12.5)
        first, second = unique_target(), unique_target()
        breaker = breakers.shared(first)
        assert breakers.shared(first) is breaker
        assert breakers.get(BreakerKey.shared(first)) is breaker
        assert breakers.shared(second) is not breaker
        assert (breaker.target, breaker.failure_threshold, breaker.reset_seconds) == (first, 4, 12.5)

    async def test_each_tenant_and_mode_has_its_own_breaker(self) -> None:
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        target = unique_target()
        a_test = breakers.get(BreakerKey.of_tenant(target, "ten_a", livemode=False))
        assert breakers.get(BreakerKey.of_tenant(target, "ten_a", livemode=False)) is a_test
        others = {
            breakers.get(BreakerKey.of_tenant(target, "ten_a", livemode=True)),
            breakers.get(BreakerKey.of_tenant(target, "ten_b", livemode=False)),
            breakers.shared(target),
        }
        assert a_test not in others
        await fail_through(a_test)
        assert a_test.state is CircuitState.OPEN
        assert {breaker.state for breaker in others} == {CircuitState.CLOSED}

    async def test_states_for_a_tenant_show_the_shared_breakers_and_its_own_only(self) -> None:
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        shared = "provider:shared-" + unique_target()
        breakers.shared(shared)
        mine = BreakerKey.of_tenant("provisioner:http", "ten_a", livemode=False, remote="a.example")
        theirs = BreakerKey.of_tenant("provisioner:http", "ten_b", livemode=False, remote="b.example")
        my_live = BreakerKey.of_tenant("provisioner:http", "ten_a", livemode=True, remote="live.example")
        await fail_through(breakers.get(mine))
        await fail_through(breakers.get(theirs))
        breakers.get(my_live)
        assert breakers.states_for("ten_a", livemode=False) == {
            "shared": {shared: "closed"},
            "tenant": {"provisioner:http:a.example": "open"},
        }
        assert breakers.states_for("ten_a", livemode=True)["tenant"] == {
            "provisioner:http:live.example": "closed"
        }


def tenant_key(target: str, tenant_id: str) -> BreakerKey:
    return BreakerKey.of_tenant(target, tenant_id, livemode=False)


async def call_as(breakers: Breakers, target: str, tenant_id: str, error: Exception | None = None) -> None:
    """One call through `target`'s shared breaker and the tenant's own, failing with `error`."""
    keys = (BreakerKey.shared(target), tenant_key(target, tenant_id))
    async with breakers.guard(keys, (Flaky,), tenant_only=(Throttled,)):
        if error is not None:
            raise error


class Throttled(Flaky):
    """One account's trouble (a 429), not the target's."""


class TestTenantOnlyFailures:
    async def test_count_against_the_tenants_breaker_and_not_the_shared_one(self) -> None:
        breakers = Breakers(failure_threshold=2, reset_seconds=60, shared_min_tenants=1)
        target = unique_target()
        for _ in range(3):
            with pytest.raises((Throttled, CircuitOpen)):
                await call_as(breakers, target, "ten_a", Throttled("429"))
        assert breakers.shared(target).state is CircuitState.CLOSED
        assert breakers.get(tenant_key(target, "ten_a")).state is CircuitState.OPEN
        assert rejections(target, "tenant") == 1  # the third call never left
        await call_as(breakers, target, "ten_b")  # another tenant goes through

    async def test_a_refusal_by_the_inner_breaker_frees_the_outer_probe(self, clock: FakeClock) -> None:
        breakers = Breakers(failure_threshold=1, reset_seconds=30, shared_min_tenants=1, clock=clock)
        target = unique_target()
        with pytest.raises(Flaky):
            await call_as(breakers, target, "ten_a", Flaky("502"))  # opens both
        clock.advance(30)
        breakers.get(tenant_key(target, "ten_a")).before_call()  # someone else probes A's breaker
        with pytest.raises(CircuitOpen):
            await call_as(breakers, target, "ten_a")
        assert breakers.shared(target).state is CircuitState.HALF_OPEN
        await call_as(breakers, target, "ten_b")  # the shared probe slot was given back: B probes
        assert breakers.shared(target).state is CircuitState.CLOSED


class TestSharedBreakerNeedsTwoTenants:
    async def test_one_tenants_failures_open_only_its_own_breaker(self) -> None:
        breakers = Breakers(failure_threshold=2, reset_seconds=60)
        target = unique_target()
        for _ in range(5):
            with pytest.raises((Flaky, CircuitOpen)):
                await call_as(breakers, target, "ten_a", Flaky("502"))
        assert breakers.get(tenant_key(target, "ten_a")).state is CircuitState.OPEN
        assert breakers.shared(target).state is CircuitState.CLOSED
        await call_as(breakers, target, "ten_b")

    async def test_failures_seen_by_two_tenants_open_the_shared_breaker(self) -> None:
        breakers = Breakers(failure_threshold=2, reset_seconds=60)
        target = unique_target()
        for tenant in ("ten_a", "ten_b"):
            with pytest.raises(Flaky):
                await call_as(breakers, target, tenant, Flaky("502"))
        assert breakers.shared(target).state is CircuitState.OPEN
        with pytest.raises(CircuitOpen):
            await call_as(breakers, target, "ten_c")  # a third tenant is refused at once
        assert breakers.states_for("ten_c", livemode=False)["tenant"] == {}  # never got that far

    async def test_one_tenants_failed_probes_do_not_hold_it_open(self, clock: FakeClock) -> None:
        breakers = Breakers(failure_threshold=2, reset_seconds=30, clock=clock)
        target = unique_target()
        for tenant in ("ten_a", "ten_b"):  # the outage
            with pytest.raises(Flaky):
                await call_as(breakers, target, tenant, Flaky("502"))
        clock.advance(30)
        with pytest.raises(Flaky):
            await call_as(breakers, target, "ten_a", Flaky("502"))  # A's probe fails, A's doing
        assert breakers.shared(target).state is CircuitState.HALF_OPEN  # not re-opened by A alone
        await call_as(breakers, target, "ten_c")  # the next tenant probes and closes it
        assert breakers.shared(target).state is CircuitState.CLOSED

    async def test_probes_failing_for_two_tenants_reopen_it(self, clock: FakeClock) -> None:
        breakers = Breakers(failure_threshold=2, reset_seconds=30, clock=clock)
        target = unique_target()
        for tenant in ("ten_a", "ten_b"):
            with pytest.raises(Flaky):
                await call_as(breakers, target, tenant, Flaky("502"))
        clock.advance(30)
        for tenant in ("ten_c", "ten_d"):  # still down for everyone
            with pytest.raises(Flaky):
                await call_as(breakers, target, tenant, Flaky("502"))
        assert breakers.shared(target).state is CircuitState.OPEN

    async def test_a_success_starts_the_run_again(self) -> None:
        breakers = Breakers(failure_threshold=2, reset_seconds=60)
        target = unique_target()
        with pytest.raises(Flaky):
            await call_as(breakers, target, "ten_a", Flaky("502"))
        await call_as(breakers, target, "ten_c")
        with pytest.raises(Flaky):
            await call_as(breakers, target, "ten_b", Flaky("502"))
        assert breakers.shared(target).state is CircuitState.CLOSED


def open_breakers(target: str, scope: str) -> float:
    labels = {"target": target, "scope": scope}
    return REGISTRY.get_sample_value("paycore_circuit_open_breakers", labels) or 0.0


class TestBoundedRegistry:
    async def test_least_recently_used_tenant_breakers_are_dropped(self) -> None:
        breakers = Breakers(failure_threshold=1, reset_seconds=60, max_tenant_breakers=3)
        target = unique_target()
        keys = [BreakerKey.of_tenant(target, f"ten_{n}", livemode=False) for n in range(10)]
        await fail_through(breakers.get(keys[0]))
        assert open_breakers(target, "tenant") == 1
        for key in keys[1:]:
            breakers.get(key)
        assert breakers.tenant_breaker_count == 3
        assert open_breakers(target, "tenant") == 0  # the dropped open one is no longer counted
        assert breakers.get(keys[0]).state is CircuitState.CLOSED  # starts again, for its tenant only

    async def test_a_used_breaker_is_kept_over_idle_ones(self) -> None:
        breakers = Breakers(failure_threshold=1, reset_seconds=60, max_tenant_breakers=2)
        target = unique_target()
        busy, idle, new = (BreakerKey.of_tenant(target, name, livemode=False) for name in ("a", "b", "c"))
        await fail_through(breakers.get(busy))
        breakers.get(idle)
        breakers.get(busy)  # used again: now the most recent
        breakers.get(new)
        assert breakers.get(busy).state is CircuitState.OPEN
        assert breakers.states_for("b", livemode=False)["tenant"] == {}
