from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status

from paycore.auth.dependencies import AnyKeyDep, StorefrontKeyDep
from paycore.checkout import service
from paycore.checkout.confirm import confirm_return
from paycore.checkout.receipts import RECEIPT_HEADER, receipt_token_matches
from paycore.checkout.schemas import (
    CheckoutIn,
    CheckoutOut,
    ConfirmIn,
    StorefrontOrderOut,
    order_line_out,
    payment_out,
)
from paycore.dependencies import DatabaseDep, ReadSessionDep, RegistryDep, SettingsDep
from paycore.errors import NotFound
from paycore.orders.models import Order, OrderItem

router = APIRouter(prefix="/v1", tags=["storefront"])


def storefront_order_out(order: Order, items: list[OrderItem]) -> StorefrontOrderOut:
    return StorefrontOrderOut(
        id=order.id,
        number=order.number,
        livemode=order.livemode,
        status=order.status,
        currency=order.currency,
        subtotal=order.subtotal,
        discount=order.discount,
        total=order.total,
        items=[order_line_out(item) for item in items],
        expires_at=order.expires_at,
        paid_at=order.paid_at,
        created=order.created_at,
    )


@router.post(
    "/checkout",
    status_code=status.HTTP_201_CREATED,
    summary="Turn a cart into an order and start its payment",
    responses={409: {"description": "Out of stock, cart already checked out, promo used up"}},
)
async def checkout(
    body: CheckoutIn,
    context: StorefrontKeyDep,
    database: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> CheckoutOut:
    result = await service.checkout(database, registry, settings, context, body)
    return CheckoutOut(
        order=storefront_order_out(result.order, result.items),
        receipt_token=result.receipt_token,
        payment=payment_out(result.attempt),
        redirect_url=result.attempt.redirect_url,
    )


@router.post(
    "/checkout/{order_id}/confirm",
    summary="The customer is back from the provider: confirm the payment with it",
    responses={400: {"description": "What the provider's page returned does not verify"}},
)
async def confirm_checkout(
    order_id: str,
    # Any key, even a suspended tenant's: a customer who has paid is confirmed, never refused.
    context: AnyKeyDep,
    database: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
    receipt: Annotated[str | None, Header(alias=RECEIPT_HEADER)] = None,
    body: ConfirmIn | None = None,
) -> StorefrontOrderOut:
    if not receipt_token_matches(settings, order_id, receipt):
        raise NotFound(f"No such order: '{order_id}'.", param="id")
    await confirm_return(
        database, registry, settings, context, order_id=order_id, params=body.params if body else {}
    )
    async with database.session(write=False) as session:
        order, items = await service.storefront_order(session, context, order_id)
    return storefront_order_out(order, items)


@router.get("/storefront/orders/{order_id}", summary="An order, for whoever holds its receipt token")
async def read_storefront_order(
    order_id: str,
    context: StorefrontKeyDep,
    session: ReadSessionDep,
    settings: SettingsDep,
    receipt: Annotated[str | None, Header(alias=RECEIPT_HEADER)] = None,
) -> StorefrontOrderOut:
    # The same 404 for a wrong token as for no order: nothing tells an order id is real.
    if not receipt_token_matches(settings, order_id, receipt):
        raise NotFound(f"No such order: '{order_id}'.", param="id")
    order, items = await service.storefront_order(session, context, order_id)
    return storefront_order_out(order, items)
