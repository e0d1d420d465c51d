from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status

from paycore.auth.context import TenantContext
from paycore.auth.dependencies import AnyKeyDep, StorefrontKeyDep
from paycore.checkout import service
from paycore.checkout.attempts import open_payment_attempt
from paycore.checkout.confirm import confirm_return
from paycore.checkout.receipts import RECEIPT_HEADER, receipt_token_matches
from paycore.checkout.schemas import (
    CheckoutIn,
    CheckoutOut,
    ConfirmIn,
    PaymentAttemptIn,
    PaymentAttemptOpenedOut,
    StorefrontOrderOut,
    order_line_out,
    payment_out,
)
from paycore.config import Settings
from paycore.db import Database
from paycore.dependencies import DatabaseDep, ReadSessionDep, RegistryDep, SettingsDep
from paycore.errors import NotFound
from paycore.orders.models import Order, OrderItem
from paycore.payments.providers.registry import ProviderRegistry

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
    """Turns the cart into an order in one transaction: reserves stock and any promo use, records the
    customer, and starts a payment with the tenant's provider. Answers the order, a receipt token
    (keep it: it is the only way to read the order from a storefront) and where to send the customer
    (`redirect_url`). The order becomes paid only when the provider confirms it; it expires when
    nobody pays in time. A provider that is down answers 503 and nothing is charged. Takes a
    publishable key (or the merchant's secret key)."""
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
    """Call it when the customer comes back from the provider's page: paycore asks the provider (never
    the browser) whether the payment went through, and answers the order as it now stands. Needs the
    order's receipt token in `X-Receipt-Token`; a wrong token is a 404. Takes a publishable or a
    secret key, even while the tenant is suspended."""
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
    """The order, its lines and its status, for whoever holds its receipt token (`X-Receipt-Token`). A
    wrong token and an unknown order are the same 404. Takes a publishable key (or the merchant's
    secret key)."""
    # The same 404 for a wrong token as for no order: nothing tells an order id is real.
    if not receipt_token_matches(settings, order_id, receipt):
        raise NotFound(f"No such order: '{order_id}'.", param="id")
    order, items = await service.storefront_order(session, context, order_id)
    return storefront_order_out(order, items)


@router.post(
    "/storefront/orders/{order_id}/payment_attempts",
    status_code=status.HTTP_201_CREATED,
    summary="Pay an unpaid order again (after a decline or a provider that did not answer)",
    responses={
        409: {"description": "An attempt is still open, or the order is paid, canceled or expired"},
        503: {"description": "The provider is not answering; the order stays payable"},
    },
)
async def pay_storefront_order_again(
    order_id: str,
    context: StorefrontKeyDep,
    database: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
    receipt: Annotated[str | None, Header(alias=RECEIPT_HEADER)] = None,
    body: PaymentAttemptIn | None = None,
) -> PaymentAttemptOpenedOut:
    """A new payment attempt for an order still awaiting payment, with the same provider or
    `provider`; answers where to send the customer (`redirect_url`). Refused while another attempt
    is open. Needs the order's receipt token in `X-Receipt-Token` (a wrong one is a 404). Takes a
    publishable key (or the merchant's secret key)."""
    if not receipt_token_matches(settings, order_id, receipt):
        raise NotFound(f"No such order: '{order_id}'.", param="id")
    return await payment_attempt_opened(database, registry, settings, context, order_id, body)


async def payment_attempt_opened(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    context: TenantContext,
    order_id: str,
    body: PaymentAttemptIn | None,
) -> PaymentAttemptOpenedOut:
    """Shared by the storefront's route and the merchant's (`/v1/orders/{id}/payment_attempts`)."""
    body = body or PaymentAttemptIn()
    opened = await open_payment_attempt(
        database,
        registry,
        settings,
        context,
        order_id,
        provider_name=body.provider,
        return_url=body.return_url,
    )
    return PaymentAttemptOpenedOut(
        order=storefront_order_out(opened.order, opened.items),
        payment=payment_out(opened.attempt),
        redirect_url=opened.attempt.redirect_url,
    )
