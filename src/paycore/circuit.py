"""Circuit breakers around calls to the outside world (payment providers, provisioners).

Our own small module rather than a library: the maintained Python breakers are synchronous
(pybreaker) or unmaintained async ports; this one is async-agnostic (it guards a block, not a
function), keeps its breakers in-process, and reports them as metrics.

closed ──(N consecutive failures)──▶ open ──(reset time passed)──▶ half-open
   ▲                                   ▲                              │
   └──────────── probe succeeded ──────┴──────── probe failed ◀───────┘

While open, calls fail at once with `CircuitOpen` instead of waiting on timeouts; half-open lets
exactly one probe through at a time.

Nothing one tenant does may open a breaker for another (DESIGN §11). So a breaker belongs to a
`BreakerKey`: either *shared* — one per remote system the operator runs or chose (a payment
provider's API, the Pterodactyl panel), counting only failures of that system as a whole (5xx,
time-outs, connection errors) — or a *tenant's own*, per (remote system, tenant, mode, and the
remote the tenant chose, if any), which may also count what only that tenant's account suffers
(a 429). A call goes through the shared breaker and the tenant's, outermost first.

A shared breaker opens only when its run of failures came from at least two tenants
(`min_sources`): a failure only one tenant sees is not yet evidence that the system as a whole is
down — a tenant able to make a provider answer 5xx to its own requests must not refuse everyone's.
Nothing is lost by waiting for a second tenant: the first one's own breaker has opened already,
and the shared breaker exists to spare the *others* the wait.

Tenant breakers grow with tenants and the hosts they name, so the registry keeps at most
`max_tenant_breakers` of them and drops the least recently used. Metrics carry only the remote
system's operator-defined name and the scope, never a tenant id or a tenant-chosen host.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

from paycore.logging import get_logger
from paycore.ops.metrics import CIRCUIT_OPEN_BREAKERS, CIRCUIT_REJECTIONS, CIRCUIT_STATE

log = get_logger(__name__)

# Each breaker is a few hundred bytes: 10,000 tenant breakers hold a few MB at most.
DEFAULT_MAX_TENANT_BREAKERS = 10_000


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerScope(StrEnum):
    SHARED = "shared"
    TENANT = "tenant"


_STATE_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


@dataclass(frozen=True, slots=True)
class BreakerKey:
    """Whose breaker. `target` names the remote system from a closed set the code defines
    (`provider:razorpay`, `provisioner:http`): it is the only part that reaches metrics or error
    messages. A shared key has no tenant; a tenant's key has its id and mode, and `remote` when
    the tenant chose where the call goes (a provisioner's host)."""

    target: str
    tenant_id: str | None = None
    livemode: bool = False
    remote: str | None = None

    @classmethod
    def shared(cls, target: str) -> BreakerKey:
        return cls(target)

    @classmethod
    def of_tenant(
        cls, target: str, tenant_id: str, *, livemode: bool, remote: str | None = None
    ) -> BreakerKey:
        return cls(target, tenant_id, livemode, remote)

    @property
    def scope(self) -> BreakerScope:
        return BreakerScope.SHARED if self.tenant_id is None else BreakerScope.TENANT

    @property
    def name(self) -> str:
        """How the breaker's owner sees it: the target, and the remote the tenant chose."""
        return self.target if self.remote is None else f"{self.target}:{self.remote}"


class CircuitOpen(Exception):
    def __init__(self, target: str, retry_after: float) -> None:
        super().__init__(f"circuit for {target} is open; next probe in {retry_after:.0f}s")
        self.target = target
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        key: BreakerKey,
        *,
        failure_threshold: int,
        reset_seconds: float,
        min_sources: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.target = key.target
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self.min_sources = min_sources
        self._failures = 0
        self._sources: set[str] = set()  # who saw the current run of failures (up to min_sources)
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._counted_open = False
        self._publish()

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self.reset_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def _publish(self) -> None:
        scope = self.key.scope
        if scope is BreakerScope.SHARED:
            # One series per remote system: a closed set, named by the code.
            CIRCUIT_STATE.labels(target=self.target).set(_STATE_VALUE[self.state])
        is_open = self._opened_at is not None
        if is_open != self._counted_open:
            gauge = CIRCUIT_OPEN_BREAKERS.labels(target=self.target, scope=scope.value)
            if is_open:
                gauge.inc()
            else:
                gauge.dec()
            self._counted_open = is_open

    def forget(self) -> None:
        """Dropped from its registry: stop counting it as open."""
        if self._counted_open:
            CIRCUIT_OPEN_BREAKERS.labels(target=self.target, scope=self.key.scope.value).dec()
            self._counted_open = False

    def _log_fields(self) -> dict[str, object]:
        if self.key.scope is BreakerScope.SHARED:
            return {"target": self.target, "scope": BreakerScope.SHARED.value}
        return {
            "target": self.target,
            "scope": BreakerScope.TENANT.value,
            "tenant_id": self.key.tenant_id,
            "livemode": self.key.livemode,
            "remote": self.key.remote,
        }

    def before_call(self) -> None:
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            self._publish()
            return
        CIRCUIT_REJECTIONS.labels(target=self.target, scope=self.key.scope.value).inc()
        assert self._opened_at is not None
        raise CircuitOpen(self.target, max(0.0, self.reset_seconds - (self._clock() - self._opened_at)))

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.info("circuit_closed", **self._log_fields())
        self._failures = 0
        self._sources.clear()
        self._opened_at = None
        self._probe_in_flight = False
        self._publish()

    def record_failure(self, source: str | None = None) -> None:
        """`source`: who saw the failure (a tenant id), for a breaker that needs `min_sources`.
        Until that many have seen the current run — the failures since the last success, or
        since the breaker opened — it neither opens nor re-opens: one tenant failing its own
        probes cannot hold a shared breaker open after the outage is over."""
        self._failures += 1
        if len(self._sources) < self.min_sources:
            self._sources.add(source or "")
        probe_failed = self._probe_in_flight
        self._probe_in_flight = False
        if len(self._sources) >= self.min_sources and (
            probe_failed or self._failures >= self.failure_threshold
        ):
            if self._opened_at is None or probe_failed:
                log.warning("circuit_opened", failures=self._failures, **self._log_fields())
            self._opened_at = self._clock()
            self._sources.clear()  # the probes after this period start a new run
        self._publish()

    def release_probe(self) -> None:
        """The call ended in a way that says nothing of the target's health: let the next probe."""
        self._probe_in_flight = False

    @asynccontextmanager
    async def guard(
        self,
        failures: tuple[type[BaseException], ...],
        *,
        except_for: tuple[type[BaseException], ...] = (),
        source: str | None = None,
    ) -> AsyncIterator[None]:
        """Run the block through the breaker; exceptions of the `failures` types count against
        it (as seen by `source`), unless they are also of an `except_for` type (a subclass this
        breaker must ignore)."""
        self.before_call()
        try:
            yield
        except failures as exc:
            if isinstance(exc, except_for):
                self.release_probe()
            else:
                self.record_failure(source)
            raise
        except BaseException:
            self.release_probe()  # not the target's fault (or not known to be): let the next call probe
            raise
        self.record_success()


class Breakers:
    """The process's breakers, created on first use with the deployment's settings: shared ones
    (a closed set, kept for the process's life) and tenants' own (bounded, least recently used
    dropped first — a dropped breaker starts again closed, which costs only its own tenant)."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_seconds: float,
        max_tenant_breakers: int = DEFAULT_MAX_TENANT_BREAKERS,
        shared_min_tenants: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failure_threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._max_tenant_breakers = max_tenant_breakers
        self._shared_min_tenants = shared_min_tenants
        self._clock = clock
        self._shared: dict[str, CircuitBreaker] = {}
        self._tenants: OrderedDict[BreakerKey, CircuitBreaker] = OrderedDict()

    def _new(self, key: BreakerKey) -> CircuitBreaker:
        return CircuitBreaker(
            key,
            failure_threshold=self._failure_threshold,
            reset_seconds=self._reset_seconds,
            min_sources=self._shared_min_tenants if key.scope is BreakerScope.SHARED else 1,
            clock=self._clock,
        )

    def shared(self, target: str) -> CircuitBreaker:
        breaker = self._shared.get(target)
        if breaker is None:
            breaker = self._shared[target] = self._new(BreakerKey.shared(target))
        return breaker

    def get(self, key: BreakerKey) -> CircuitBreaker:
        if key.tenant_id is None:
            return self.shared(key.target)
        breaker = self._tenants.get(key)
        if breaker is not None:
            self._tenants.move_to_end(key)
            return breaker
        breaker = self._tenants[key] = self._new(key)
        while len(self._tenants) > self._max_tenant_breakers:
            _, dropped = self._tenants.popitem(last=False)
            dropped.forget()
        return breaker

    @property
    def tenant_breaker_count(self) -> int:
        return len(self._tenants)

    @asynccontextmanager
    async def guard(
        self,
        keys: Sequence[BreakerKey],
        failures: tuple[type[BaseException], ...],
        *,
        tenant_only: tuple[type[BaseException], ...] = (),
    ) -> AsyncIterator[None]:
        """Run the block through the breakers of `keys`, outermost first. `tenant_only` failures
        (say, a 429 on the tenant's account) count against tenant breakers, never shared ones;
        other failures count against shared ones as seen by the tenant in `keys`. The first open
        breaker refuses with `CircuitOpen`; the ones already passed let go of their probe slot,
        since the call never reached the target."""
        tenant = next((key.tenant_id for key in keys if key.tenant_id is not None), None)
        async with AsyncExitStack() as stack:
            for key in keys:
                except_for = tenant_only if key.scope is BreakerScope.SHARED else ()
                breaker = self.get(key)
                await stack.enter_async_context(breaker.guard(failures, except_for=except_for, source=tenant))
            yield

    def states_for(self, tenant_id: str, *, livemode: bool) -> dict[str, dict[str, str]]:
        """What one tenant may see: the shared breakers, and its own in this mode — never
        another tenant's (their names carry hosts that tenant chose)."""
        own = {
            key.name: breaker.state.value
            for key, breaker in self._tenants.items()
            if key.tenant_id == tenant_id and key.livemode == livemode
        }
        return {
            "shared": {target: breaker.state.value for target, breaker in sorted(self._shared.items())},
            "tenant": dict(sorted(own.items())),
        }
