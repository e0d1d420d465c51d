from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from paycore.auth.dependencies import ReadKeyDep, RefundsKeyDep, WriteKeyDep
from paycore.dependencies import DatabaseDep, ReadSessionDep, RegistryDep, WriteSessionDep
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
    order = await service.cancel_order(session, context, order_id)
    return OrderOut.model_validate(order_fields(order))


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
    refund = await request_refund(
        database, registry, context, order_id=order_id, amount=body.amount, reason=body.reason
    )
    return refund_out(refund)
