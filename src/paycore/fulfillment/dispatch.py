"""Provisioning fulfillments: claim the due ones, call their provisioner through its circuit
breaker, record the result, and complete the order when its last fulfillment is done.

Claims work as for the outbox (`FOR UPDATE SKIP LOCKED` on PostgreSQL, one `BEGIN IMMEDIATE`
transaction on SQLite, `locked_until` for workers that die). Failures back off exponentially; after
`PAYCORE_FULFILLMENT_MAX_ATTEMPTS` the fulfillment `needs_attention`: an ops alert and a
`fulfillment.failed` event go out, and nothing retries it until a person does.

A provisioner that spends the operator's resources is called only once `operator_gate` admits the
fulfillment (operator template, plan, confirmed payment, quota); a refusal there needs attention at
once, without a call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update

from paycore.audit.service import Actor
from paycore.circuit import Breakers, CircuitOpen
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.customers.models import Customer
from paycore.db import Database
from paycore.fulfillment.models import Fulfillment, FulfillmentKind, FulfillmentStatus
from paycore.fulfillment.operator_gate import (
    PaymentNotConfirmed,
    ProvisioningRefused,
    admit_operator_provisioning,
)
from paycore.fulfillment.provisioners.base import (
    Provisioner,
    ProvisionerUnavailable,
    ProvisionFailed,
    ProvisionRequest,
)
from paycore.logging import get_logger
from paycore.ops.metrics import FULFILLMENT_ATTEMPTS
from paycore.orders.effects import mark_fulfilled
from paycore.orders.models import Order, OrderItem
from paycore.orders.rendering import order_event_object
from paycore.orders.states import OrderStatus
from paycore.orders.transitions import lock_order
from paycore.outbox.service import alert_ops, emit_merchant_event

if TYPE_CHECKING:
    from paycore.payments.providers.registry import ProviderRegistry

log = get_logger(__name__)

ACTOR = Actor(name="system:fulfillment")
_OPEN = (FulfillmentStatus.PENDING, FulfillmentStatus.RETRYING)


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """30 s, 1 min, 2 min, … capped at one hour, with ±10 % jitter."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600) * rng.uniform(0.9, 1.1))


async def claim_due_fulfillments(
    database: Database, *, worker_id: str, limit: int, claim_for: timedelta, now: datetime | None = None
) -> list[Fulfillment]:
    now = now or utcnow()
    due = (
        select(Fulfillment.id)
        .where(
            Fulfillment.kind == FulfillmentKind.PROVISION,
            Fulfillment.status.in_(_OPEN),
            Fulfillment.next_attempt_at <= now,
            or_(Fulfillment.locked_until.is_(None), Fulfillment.locked_until < now),
        )
        .order_by(Fulfillment.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Fulfillment)
    )
    claim = (
        update(Fulfillment)
        .where(Fulfillment.id.in_(due.scalar_subquery()))
        .values(locked_until=now + claim_for, locked_by=worker_id)
        .returning(Fulfillment)
    )
    async with database.session(write=True) as session:
        rows = await session.scalars(
            select(Fulfillment).from_statement(claim).execution_options(populate_existing=True)
        )
        return list(rows)


async def provision_request(database: Database, fulfillment: Fulfillment) -> ProvisionRequest:
    async with database.session(write=False) as session:
        item = await session.get(OrderItem, fulfillment.order_item_id)
        order = await session.get(Order, fulfillment.order_id)
        assert item is not None
        assert order is not None
        customer = await session.get(Customer, order.customer_id)
        assert customer is not None
    return ProvisionRequest(
        fulfillment_id=fulfillment.external_ref,
        tenant_id=fulfillment.tenant_id,
        livemode=fulfillment.livemode,
        order_id=order.id,
        order_number=order.number,
        product_id=item.product_id,
        product_name=item.name,
        quantity=item.quantity,
        customer_email=customer.email,
        customer_name=customer.name,
        config=dict(item.fulfillment.get("config") or {}),
    )


class FulfillmentDispatcher:
    def __init__(
        self,
        database: Database,
        provisioners: Mapping[str, Provisioner],
        breakers: Breakers,
        settings: Settings,
        *,
        providers: ProviderRegistry,
        worker_id: str,
    ) -> None:
        """`providers` confirm payments before anything is made on the operator's systems."""
        self.database = database
        self.provisioners = provisioners
        self.providers = providers
        self.breakers = breakers
        self.settings = settings
        self.worker_id = worker_id
        self._rng = random.Random()  # noqa: S311 (jitter, not secrecy)

    async def _succeeded(self, fulfillment: Fulfillment, result_ref: str) -> None:
        now = utcnow()
        async with self.database.session(write=True) as session:
            order = await lock_order(session, order_id=fulfillment.order_id, tenant_id=fulfillment.tenant_id)
            written = await session.execute(
                update(Fulfillment)
                .where(Fulfillment.id == fulfillment.id, Fulfillment.locked_by == self.worker_id)
                .values(
                    status=FulfillmentStatus.SUCCEEDED,
                    result_ref=result_ref,
                    completed_at=now,
                    attempts=Fulfillment.attempts + 1,
                    last_error=None,
                    locked_until=None,
                    locked_by=None,
                )
                .execution_options(synchronize_session=False)
            )
            if not getattr(written, "rowcount", 0):
                return  # our claim ran out and another worker has it
            open_left = await session.scalar(
                select(Fulfillment.id)
                .where(Fulfillment.order_id == order.id, Fulfillment.status != FulfillmentStatus.SUCCEEDED)
                .limit(1)
            )
            if open_left is None and order.status is OrderStatus.PAID:
                await mark_fulfilled(session, order, actor=ACTOR, now=now)
        FULFILLMENT_ATTEMPTS.labels(result="succeeded").inc()

    async def _failed(self, fulfillment: Fulfillment, error: str, *, give_up: bool = False) -> None:
        """Back off and retry, or — out of attempts, or `give_up` (a refusal retrying will not
        change) — needs attention: an ops alert and a `fulfillment.failed` event."""
        now = utcnow()
        attempts = fulfillment.attempts + 1
        exhausted = give_up or attempts >= self.settings.fulfillment_max_attempts
        values: dict[str, object] = {
            "attempts": attempts,
            "last_error": error[:2000],
            "locked_until": None,
            "locked_by": None,
            "status": FulfillmentStatus.NEEDS_ATTENTION if exhausted else FulfillmentStatus.RETRYING,
            "next_attempt_at": None if exhausted else now + backoff(attempts, self._rng),
        }
        async with self.database.session(write=True) as session:
            written = await session.execute(
                update(Fulfillment)
                .where(Fulfillment.id == fulfillment.id, Fulfillment.locked_by == self.worker_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if exhausted and bool(getattr(written, "rowcount", 0)):
                order = await session.get(Order, fulfillment.order_id)
                assert order is not None
                await alert_ops(
                    session,
                    tenant_id=fulfillment.tenant_id,
                    livemode=fulfillment.livemode,
                    code="fulfillment_needs_attention",
                    message=(
                        f"Provisioning for order {order.number} was refused: {error[:200]}"
                        if give_up
                        else f"Provisioning for order {order.number} failed {attempts} times: {error[:200]}"
                    ),
                    subject_key=fulfillment.id,
                    details={"fulfillment": fulfillment.id, "order": order.id},
                )
                await emit_merchant_event(
                    session,
                    tenant_id=fulfillment.tenant_id,
                    livemode=fulfillment.livemode,
                    event_type="fulfillment.failed",
                    subject_key=fulfillment.id,
                    order_id=order.id,
                    data={
                        "id": fulfillment.id,
                        "object": "fulfillment",
                        "status": FulfillmentStatus.NEEDS_ATTENTION.value,
                        "error": error[:500],
                        "order": await order_event_object(session, order),
                    },
                )
        FULFILLMENT_ATTEMPTS.labels(result="needs_attention" if exhausted else "retry").inc()
        log.warning("fulfillment_failed", fulfillment=fulfillment.id, attempts=attempts, error=error[:300])

    async def _postpone(self, fulfillment: Fulfillment, seconds: float) -> None:
        """The target's breaker is open: no attempt is spent, the row waits for the next probe."""
        async with self.database.session(write=True) as session:
            await session.execute(
                update(Fulfillment)
                .where(Fulfillment.id == fulfillment.id, Fulfillment.locked_by == self.worker_id)
                .values(
                    next_attempt_at=utcnow() + timedelta(seconds=seconds), locked_until=None, locked_by=None
                )
                .execution_options(synchronize_session=False)
            )

    async def _run_one(self, fulfillment: Fulfillment) -> None:
        request = await provision_request(self.database, fulfillment)
        name = str(request.config.get("provisioner", "http"))
        provisioner = self.provisioners.get(name)
        if provisioner is None:
            await self._failed(fulfillment, f"no provisioner named {name!r}")
            return
        if provisioner.spends_operator_resources:
            try:
                spec = await admit_operator_provisioning(
                    self.database, self.providers, fulfillment, request.config
                )
            except ProvisioningRefused as exc:
                await self._failed(fulfillment, str(exc), give_up=True)
                return
            except PaymentNotConfirmed as exc:
                await self._failed(fulfillment, str(exc))
                return
            request = dataclasses.replace(request, operator_spec=spec)
        try:
            async with self.breakers.guard(
                provisioner.breaker_keys(request), (ProvisionerUnavailable, TimeoutError)
            ):
                result = await asyncio.wait_for(
                    provisioner.provision(request), timeout=self.settings.provider_timeout_seconds * 3
                )
        except CircuitOpen as exc:
            await self._postpone(fulfillment, exc.retry_after)
        except Exception as exc:
            if not isinstance(exc, ProvisionFailed | TimeoutError):
                log.exception("provisioner_failed_unexpectedly", fulfillment=fulfillment.id)
            # A provisioner's own message is written to be shown (no remote body); anything else
            # is named by its type only, as the tenant reads `last_error` in fulfillment.failed.
            error = str(exc) if isinstance(exc, ProvisionFailed) else ""
            await self._failed(fulfillment, error or type(exc).__name__)
        else:
            await self._succeeded(fulfillment, result.result_ref)

    async def process_batch(self, stop: asyncio.Event) -> int:
        if stop.is_set():
            return 0
        fulfillments = await claim_due_fulfillments(
            self.database,
            worker_id=self.worker_id,
            limit=self.settings.worker_batch_size,
            claim_for=timedelta(seconds=self.settings.worker_claim_seconds),
        )
        for fulfillment in fulfillments:
            if stop.is_set():
                break  # unclaimed ones run out their claim and return to the queue
            try:
                await self._run_one(fulfillment)
            except Exception:
                log.exception("fulfillment_dispatch_failed", fulfillment=fulfillment.id)
        return len(fulfillments)
