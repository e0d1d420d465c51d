"""Circuit breakers around calls to the outside world (payment providers, provisioners).

Our own small module rather than a library: the maintained Python breakers are synchronous
(pybreaker) or unmaintained async ports; this one is async-agnostic (it guards a block, not a
function), keeps one breaker per named target in-process, and reports its state as a metric.

closed ──(N consecutive failures)──▶ open ──(reset time passed)──▶ half-open
   ▲                                   ▲                              │
   └──────────── probe succeeded ──────┴──────── probe failed ◀───────┘

While open, calls fail at once with `CircuitOpen` instead of waiting on timeouts; half-open lets
exactly one probe through at a time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum

from paycore.logging import get_logger
from paycore.ops.metrics import CIRCUIT_REJECTIONS, CIRCUIT_STATE

log = get_logger(__name__)


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_STATE_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class CircuitOpen(Exception):
    def __init__(self, target: str, retry_after: float) -> None:
        super().__init__(f"circuit for {target} is open; next probe in {retry_after:.0f}s")
        self.target = target
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        target: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._publish()

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self.reset_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def _publish(self) -> None:
        CIRCUIT_STATE.labels(target=self.target).set(_STATE_VALUE[self.state])

    def before_call(self) -> None:
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            self._publish()
            return
        CIRCUIT_REJECTIONS.labels(target=self.target).inc()
        assert self._opened_at is not None
        raise CircuitOpen(self.target, max(0.0, self.reset_seconds - (self._clock() - self._opened_at)))

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.info("circuit_closed", target=self.target)
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False
        self._publish()

    def record_failure(self) -> None:
        self._failures += 1
        probe_failed = self._probe_in_flight
        self._probe_in_flight = False
        if probe_failed or self._failures >= self.failure_threshold:
            if self._opened_at is None or probe_failed:
                log.warning("circuit_opened", target=self.target, failures=self._failures)
            self._opened_at = self._clock()
        self._publish()

    @asynccontextmanager
    async def guard(self, failures: tuple[type[BaseException], ...]) -> AsyncIterator[None]:
        """Run the block through the breaker; exceptions of the `failures` types count against it."""
        self.before_call()
        try:
            yield
        except failures:
            self.record_failure()
            raise
        except BaseException:
            self._probe_in_flight = False  # not the target's fault: let the next call probe
            raise
        self.record_success()


class Breakers:
    """One breaker per target, created on first use with the deployment's settings."""

    def __init__(self, *, failure_threshold: int, reset_seconds: float) -> None:
        self._failure_threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, target: str) -> CircuitBreaker:
        breaker = self._breakers.get(target)
        if breaker is None:
            breaker = CircuitBreaker(
                target, failure_threshold=self._failure_threshold, reset_seconds=self._reset_seconds
            )
            self._breakers[target] = breaker
        return breaker

    def states(self) -> dict[str, str]:
        return {target: breaker.state.value for target, breaker in sorted(self._breakers.items())}
