"""What happens to an order when money moves: paid, fulfilled, released, reviewed, refunded.

Each function runs inside the caller's transaction, so a state change and all its effects —
stock, customer totals, promo use, entitlements, fulfillment rows, outbox rows, audit rows —
commit together or not at all. The compare-and-set in `transition` lets exactly one transaction
past each state change, which is what makes every effect happen once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor
from paycore.customers.models import Customer, CustomerSpend
from paycore.db import upsert_insert
from paycore.fulfillment.models import Fulfillment, FulfillmentStatus
from paycore.fulfillment.service import fulfill_paid_order, revoke_entitlements
from paycore.ids import new_id
from paycore.orders.models import Order
from paycore.orders.rendering import (
    OrderView,
    load_order_view,
    order_event_object,
    order_items,
    order_object_json,
    refund_event_object,
)
from paycore.orders.states import OrderEvent, OrderStatus
from paycore.orders.stock import (
    release_promo_use,
    release_stock,
    sell_available_stock,
    sell_reserved_stock,
    use_promo,
)
from paycore.orders.transitions import order_snapshot, transition
from paycore.outbox.models import OutboxChannel
from paycore.outbox.service import alert_ops, emit_merchant_event, enqueue
from paycore.payments.models import Refund


async def _emit_order_event(
    session: AsyncSession, order: Order, event_type: str, *, view: OrderView | None = None
) -> None:
    """`view`: the order's rows already read in this transaction and unchanged since, but for
    the order itself (the object `view.order` is, so it shows its state now)."""
    await emit_merchant_event(
        session,
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        event_type=event_type,
        subject_key=order.id,
        data=order_object_json(view) if view is not None else await order_event_object(session, order),
        order_id=order.id,
    )


async def _count_customer_purchase(session: AsyncSession, order: Order) -> Customer | None:
    """The customer as it is now. RETURNING the row puts it in the session: while the caller
    holds it, the email and the order's rendering that follow find it there instead of selecting
    it again (the session holds its objects weakly)."""
    customer = await session.scalar(
        update(Customer)
        .where(Customer.id == order.customer_id)
        .values(total_orders=Customer.total_orders + 1)
        .returning(Customer)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    insert = upsert_insert(session, CustomerSpend.__table__).values(
        id=new_id("cusp"),
        tenant_id=order.tenant_id,
        customer_id=order.customer_id,
        currency=order.currency,
        amount=order.total,
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["tenant_id", "customer_id", "currency"],
            set_={"amount": CustomerSpend.amount + order.total},
        )
    )
    return customer


async def _email_customer(
    session: AsyncSession,
    order: Order,
    *,
    template: str,
    dedupe_subject: str,
    extra: dict[str, object],
    customer: Customer | None = None,
) -> None:
    customer = customer or await session.get(Customer, order.customer_id)
    assert customer is not None
    await enqueue(
        session,
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        channel=OutboxChannel.EMAIL,
        topic=f"email.{template}",
        dedupe_key=f"email.{template}:{dedupe_subject}",
        payload={
            "template": template,
            "to": customer.email,
            "name": customer.name,
            "order": order_snapshot(order),
            **extra,
        },
    )


async def _whatsapp_customer(session: AsyncSession, order: Order) -> None:
    # The number given at this checkout, not whatever the customer record says now.
    if not order.contact_phone:
        return
    await enqueue(
        session,
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        channel=OutboxChannel.WHATSAPP,
        topic="whatsapp.order_paid",
        dedupe_key=f"whatsapp.order_paid:{order.id}",
        payload={"to": order.contact_phone, "order": order_snapshot(order)},
    )


async def mark_paid(
    session: AsyncSession,
    order: Order,
    *,
    actor: Actor,
    now: datetime,
    amount_paid: int,
    late: bool,
    notify_whatsapp: bool = False,
) -> bool:
    """Pay `order` and apply every effect of "paid". False when it was already paid (no-op).

    `late`: the order had expired or been canceled, so its reservation was released; the caller
    has already taken the stock from what is available now (`take_stock_for_late_payment`).
    """
    items = await order_items(session, order)
    held_reservation = order.status is OrderStatus.PENDING_PAYMENT
    event = OrderEvent.RESOLVE if order.status is OrderStatus.NEEDS_REVIEW else OrderEvent.PAY
    if not await transition(
        session,
        order,
        event,
        actor=actor,
        now=now,
        changes={"paid_at": now, "amount_paid": amount_paid},
        note={"amount_paid": amount_paid, "late": late},
    ):
        return False
    if held_reservation:
        await sell_reserved_stock(session, items)
    if order.promo_code_id is not None:
        await use_promo(session, order.promo_code_id, was_reserved=held_reservation)
    customer = await _count_customer_purchase(session, order)
    fulfillments = await fulfill_paid_order(session, order=order, items=items, now=now)
    # Read once, after the entitlements were granted: both events below render from it.
    view = await load_order_view(session, order, items=items)
    assert view.customer is customer or customer is None
    await _email_customer(
        session, order, template="order_paid", dedupe_subject=order.id, extra={}, customer=view.customer
    )
    if notify_whatsapp:
        await _whatsapp_customer(session, order)
    await _emit_order_event(session, order, "order.paid", view=view)
    if all(row.status is FulfillmentStatus.SUCCEEDED for row in fulfillments):
        await mark_fulfilled(session, order, actor=actor, now=now, view=view)
    return True


async def mark_fulfilled(
    session: AsyncSession, order: Order, *, actor: Actor, now: datetime, view: OrderView | None = None
) -> None:
    if await transition(
        session, order, OrderEvent.FULFILL, actor=actor, now=now, changes={"fulfilled_at": now}
    ):
        await _emit_order_event(session, order, "order.fulfilled", view=view)


async def take_stock_for_late_payment(session: AsyncSession, order: Order) -> bool:
    return await sell_available_stock(session, await order_items(session, order))


async def _give_back_reservation(session: AsyncSession, order: Order) -> None:
    await release_stock(session, await order_items(session, order))
    if order.promo_code_id is not None:
        await release_promo_use(session, order.promo_code_id)


async def release_order(
    session: AsyncSession, order: Order, event: OrderEvent, *, actor: Actor, now: datetime
) -> bool:
    """Cancel or expire an unpaid order and give back its stock and promo use."""
    changes = {"canceled_at": now} if event is OrderEvent.CANCEL else {}
    if not await transition(session, order, event, actor=actor, now=now, changes=changes):
        return False
    await _give_back_reservation(session, order)
    await _emit_order_event(session, order, f"order.{order.status.value}")
    return True


async def send_to_review(
    session: AsyncSession,
    order: Order,
    *,
    reason: str,
    actor: Actor,
    now: datetime,
    amount_received: int,
    details: dict[str, object],
) -> None:
    """A case no rule may settle alone (a wrong amount, a payment too late with no stock left).

    The money received is recorded on the order even though it is not paid: it is what a refund
    gives back.
    """
    held_reservation = order.status is OrderStatus.PENDING_PAYMENT
    await transition(
        session,
        order,
        OrderEvent.REVIEW,
        actor=actor,
        now=now,
        changes={"review_reason": reason, "amount_paid": amount_received},
        note={"reason": reason, "amount_received": amount_received},
    )
    if held_reservation:
        await _give_back_reservation(session, order)
    await alert_ops(
        session,
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        code=reason,
        message=f"Order {order.number} needs review: {reason.replace('_', ' ')}.",
        subject_key=order.id,
        details={"order": order.id, **details},
    )
    await _emit_order_event(session, order, "order.needs_review")


async def record_refund(
    session: AsyncSession, order: Order, refund: Refund, *, actor: Actor, now: datetime
) -> None:
    """A refund of the order's payment succeeded: count it, move the order, tell customer and merchant."""
    amount, refund_id = refund.amount, refund.id
    refunded = order.amount_refunded + amount
    full = refunded >= order.amount_paid
    if order.status is OrderStatus.NEEDS_REVIEW and not full:
        # Part of a payment under review went back: the order stays in review; the sum changes.
        await session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(amount_refunded=refunded, version=Order.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(order)
    else:
        await transition(
            session,
            order,
            OrderEvent.REFUND_FULL if full else OrderEvent.REFUND_PARTIAL,
            actor=actor,
            now=now,
            changes={"amount_refunded": refunded},
            note={"refund": refund_id, "amount": amount},
        )
    if full:
        await revoke_entitlements(session, order=order, now=now)
        # Nothing more is made for an order whose money went back (a server still being provisioned).
        await session.execute(
            update(Fulfillment)
            .where(
                Fulfillment.order_id == order.id,
                Fulfillment.status.in_([FulfillmentStatus.PENDING, FulfillmentStatus.RETRYING]),
            )
            .values(status=FulfillmentStatus.CANCELED, locked_until=None, locked_by=None)
            .execution_options(synchronize_session=False)
        )
    await _email_customer(
        session, order, template="refund_issued", dedupe_subject=refund_id, extra={"amount": amount}
    )
    await emit_merchant_event(
        session,
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        event_type="refund.succeeded",
        subject_key=refund_id,
        order_id=order.id,
        data=await refund_event_object(session, order, refund),
    )
    if order.status is OrderStatus.REFUNDED:
        await _emit_order_event(session, order, "order.refunded")
