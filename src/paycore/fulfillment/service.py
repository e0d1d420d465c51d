"""Fulfillment rows and entitlements. What can be done inside the paying transaction is done there
(stock, entitlements); what needs the outside world (provisioning) is left `pending` for the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.auth.context import TenantContext
from paycore.customers.models import Customer
from paycore.db import upsert_insert
from paycore.errors import Conflict, NotFound
from paycore.fulfillment.models import Entitlement, Fulfillment, FulfillmentKind, FulfillmentStatus
from paycore.ids import new_id
from paycore.orders.models import Order, OrderItem

_KIND_BY_SPEC = {
    "stock": FulfillmentKind.STOCK,
    "entitlement": FulfillmentKind.ENTITLEMENT,
    "provision": FulfillmentKind.PROVISION,
}


async def grant_entitlement(session: AsyncSession, *, order: Order, item: OrderItem, now: datetime) -> None:
    await session.execute(
        upsert_insert(session, Entitlement.__table__)
        .values(
            id=new_id("ent"),
            tenant_id=order.tenant_id,
            livemode=order.livemode,
            customer_id=order.customer_id,
            product_id=item.product_id,
            order_id=order.id,
            granted_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "order_id", "product_id"])
    )


async def fulfill_paid_order(
    session: AsyncSession, *, order: Order, items: list[OrderItem], now: datetime
) -> list[Fulfillment]:
    """One fulfillment per line; returns them all (existing ones too, so a replay adds nothing)."""
    existing = {
        row.order_item_id: row
        for row in await session.scalars(select(Fulfillment).where(Fulfillment.order_id == order.id))
    }
    rows: list[Fulfillment] = []
    for item in items:
        if item.id in existing:
            rows.append(existing[item.id])
            continue
        kind = _KIND_BY_SPEC.get(str(item.fulfillment.get("type")), FulfillmentKind.ENTITLEMENT)
        fulfillment_id = new_id("ful")
        row = Fulfillment(
            id=fulfillment_id,
            tenant_id=order.tenant_id,
            livemode=order.livemode,
            order_id=order.id,
            order_item_id=item.id,
            kind=kind,
            external_ref=fulfillment_id,
        )
        if kind is FulfillmentKind.ENTITLEMENT:
            await grant_entitlement(session, order=order, item=item, now=now)
        if kind in (FulfillmentKind.STOCK, FulfillmentKind.ENTITLEMENT):
            # Stock moved from reserved to sold and access was granted in this same transaction.
            row.status = FulfillmentStatus.SUCCEEDED
            row.completed_at = now
        else:
            row.next_attempt_at = now
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def revoke_entitlements(session: AsyncSession, *, order: Order, now: datetime) -> None:
    await session.execute(
        update(Entitlement)
        .where(Entitlement.order_id == order.id, Entitlement.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def list_entitlements(
    session: AsyncSession, context: TenantContext, *, customer_email: str, include_revoked: bool
) -> list[tuple[Entitlement, Customer]]:
    statement = (
        select(Entitlement, Customer)
        .join(Customer, Customer.id == Entitlement.customer_id)
        .where(
            Entitlement.tenant_id == context.tenant_id,
            Entitlement.livemode == context.livemode,
            Customer.email == customer_email.strip().lower(),
        )
        .order_by(Entitlement.granted_at, Entitlement.id)
    )
    if not include_revoked:
        statement = statement.where(Entitlement.revoked_at.is_(None))
    return [(entitlement, customer) for entitlement, customer in await session.execute(statement)]


async def list_fulfillments(
    session: AsyncSession, *, status: FulfillmentStatus | None, limit: int
) -> list[Fulfillment]:
    statement = (
        select(Fulfillment).order_by(Fulfillment.created_at.desc(), Fulfillment.id.desc()).limit(limit)
    )
    if status is not None:
        statement = statement.where(Fulfillment.status == status)
    return list(await session.scalars(statement))


async def retry_fulfillment(
    session: AsyncSession, *, fulfillment_id: str, actor: Actor, now: datetime
) -> Fulfillment:
    """Put a provisioning that ran out of attempts back in line (after the cause is fixed): the
    worker takes it at once, with the same `external_ref`, so a provisioner that did create the
    server the first time finds it instead of making a second."""
    fulfillment = await session.get(Fulfillment, fulfillment_id, with_for_update=True)
    if fulfillment is None:
        raise NotFound(f"No fulfillment {fulfillment_id}.", param="id")
    if fulfillment.status is not FulfillmentStatus.NEEDS_ATTENTION:
        raise Conflict(
            f"Fulfillment {fulfillment_id} is {fulfillment.status.value}; only needs_attention is retried.",
            code="fulfillment_not_stuck",
        )
    fulfillment.status = FulfillmentStatus.RETRYING
    fulfillment.attempts = 0
    fulfillment.next_attempt_at = now
    fulfillment.locked_until = None
    fulfillment.locked_by = None
    record_audit(
        session,
        actor=actor,
        action="fulfillment.retried",
        entity_type="order",
        entity_id=fulfillment.order_id,
        tenant_id=fulfillment.tenant_id,
        after={"fulfillment": fulfillment.id, "last_error": (fulfillment.last_error or "")[:200]},
    )
    return fulfillment
