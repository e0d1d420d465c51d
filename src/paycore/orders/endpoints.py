from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from paycore.auth.dependencies import ReadKeyDep, RefundsKeyDep, WriteKeyDep
from paycore.checkout.endpoints import payment_attempt_opened
from paycore.checkout.schemas import PaymentAttemptIn, PaymentAttemptOpenedOut
from paycore.dependencies import DatabaseDep, ReadSessionDep, RegistryDep, SettingsDep, WriteSessionDep
from paycore.orders import service
from paycore.orders.rendering import order_fields, order_object_fields, refund_out
from paycore.orders.schemas import OrderDetailOut, OrderOut, RefundIn, RefundOut, TimelineEntry
from paycore.orders.states import OrderStatus
from paycore.payments.refunds import request_refund
from paycore.schemas import DEFAULT_LIMIT, CursorQuery, LimitQuery, ListOut, UtcDatetime

router = APIRouter(prefix="/v1/orders", tags=["orders"])


@router.get("", summary="List orders, newest first")
async def list_orders(
    context: ReadKeyDep,
    session: ReadSessionDep,
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
    customer_email: Annotated[str | None, Query(max_length=320)] = None,
    # Aware: a time without an offset names no instant (and made the UTC column raise: a 500).
    created_gte: Annotated[UtcDatetime | None, Query(description="Created at or after (RFC 3339).")] = None,
    created_lt: Annotated[UtcDatetime | None, Query(description="Created before (RFC 3339).")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[OrderOut]:
    """The tenant's orders in this mode, newest first; filter by status, page with `limit` and
    `cursor`. Needs a secret key with the `read` scope."""
    page = await service.list_orders(
        session,
        context,
        status=status_filter,
        customer_email=customer_email,
        created_gte=created_gte,
        created_lt=created_lt,
        limit=limit,
        cursor=cursor,
    )
    return ListOut(
        data=[OrderOut.model_validate(order_fields(order)) for order in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/{order_id}", summary="An order with its lines, payments, refunds and timeline")
async def read_order(order_id: str, context: ReadKeyDep, session: ReadSessionDep) -> OrderDetailOut:
    """Everything about one order: lines, payment attempts, refunds and the timeline of its changes.
    Needs a secret key with the `read` scope."""
    detail = await service.order_detail(session, context, order_id)
    return OrderDetailOut.model_validate(
        {
            **order_object_fields(detail.view),
            "timeline": [
                TimelineEntry(
                    at=entry.at,
                    action=entry.action,
                    actor=entry.actor,
                    details=entry.after,
                    request_id=entry.correlation_id,
                )
                for entry in detail.timeline
            ],
        }
    )


@router.post("/{order_id}/cancel", summary="Cancel an unpaid order (releases its stock)")
async def cancel_order(order_id: str, context: WriteKeyDep, session: WriteSessionDep) -> OrderOut:
    """Cancels an order nobody has paid yet and releases its stock and promo use. A paid order is
    refunded instead (409 `invalid_transition`). Needs a secret key with the `write` scope."""
    order = await service.cancel_order(session, context, order_id)
    return OrderOut.model_validate(order_fields(order))


@router.post(
    "/{order_id}/payment_attempts",
    status_code=status.HTTP_201_CREATED,
    summary="Pay an unpaid order again: a new payment attempt, same or another provider",
    responses={
        409: {"description": "An attempt is still open, or the order is paid, canceled or expired"},
        503: {"description": "The provider is not answering; the order stays payable"},
    },
)
async def pay_order_again(
    order_id: str,
    context: WriteKeyDep,
    database: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
    body: PaymentAttemptIn | None = None,
) -> PaymentAttemptOpenedOut:
    """A new payment attempt for an order still awaiting payment (after a decline, or a provider
    that did not answer), with the same provider or `provider`; answers where to send the customer.
    Refused while another attempt is open. Needs a secret key with the `write` scope."""
    return await payment_attempt_opened(database, registry, settings, context, order_id, body)


@router.post(
    "/{order_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund all or part of a paid order, through its provider",
)
async def refund_order(
    order_id: str,
    body: RefundIn,
    context: RefundsKeyDep,
    database: DatabaseDep,
    registry: RegistryDep,
) -> RefundOut:
    """Asks the order's provider to send money back: the whole amount paid, or `amount` of it. The
    refund is recorded when the provider confirms it (`refund.succeeded` event); more than what is
    left to refund is refused. Works while the tenant is suspended: money already taken can always
    go back. Needs a secret key with the `refunds` scope."""
    refund = await request_refund(
        database, registry, context, order_id=order_id, amount=body.amount, reason=body.reason
    )
    return refund_out(refund)
