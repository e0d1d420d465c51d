"""Checkout: cart → order (`pending_payment`) → payment session at the provider.

Two transactions around one provider call, never a provider call inside a transaction:
1. convert the cart, reserve stock and promo use, create customer, order, lines, payment attempt;
2. (after the provider answered) store its reference and the customer's redirect URL.
If the provider cannot be reached the attempt fails and the order stays `pending_payment`, payable
again through a new attempt (`attempts.py`) until it expires.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import record_audit
from paycore.auth.context import TenantContext
from paycore.carts.models import Cart, CartItem, CartStatus
from paycore.carts.service import get_cart
from paycore.catalog.models import Product, PromoCode
from paycore.catalog.service import promo_is_open
from paycore.checkout.attempts import account_for, ensure_provider_ready, request_payment_session
from paycore.checkout.durability import require_durable_database
from paycore.checkout.receipts import receipt_token
from paycore.checkout.schemas import CheckoutIn
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.customers.service import find_or_create_customer
from paycore.db import Database
from paycore.errors import Conflict, InvalidRequest
from paycore.logging import get_logger
from paycore.money import Money, MoneyError, discount_for, sum_money
from paycore.ops.metrics import CHECKOUTS
from paycore.orders.models import Order, OrderItem
from paycore.orders.rendering import OrderView, order_items, order_object_json
from paycore.orders.service import get_order
from paycore.orders.stock import reserve_promo_use, reserve_stock
from paycore.orders.transitions import order_snapshot
from paycore.outbox.service import emit_merchant_event
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import (
    PaymentRequest,
)
from paycore.payments.providers.registry import ProviderRegistry
from paycore.tenancy.limits import check_order_limit

log = get_logger(__name__)

# Order numbers people read out on the phone: no 0/O, 1/I/L.
_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_order_number() -> str:
    raw = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    order: Order
    items: list[OrderItem]
    attempt: PaymentAttempt
    receipt_token: str


async def _convert_cart(session: AsyncSession, context: TenantContext, cart_id: str) -> Cart:
    """Take the cart out of play first: a concurrent checkout of the same cart gets 409."""
    cart = await get_cart(session, context, cart_id)
    converted = await session.execute(
        update(Cart)
        .where(Cart.id == cart.id, Cart.status == CartStatus.OPEN)
        .values(status=CartStatus.CONVERTED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not getattr(converted, "rowcount", 0):
        raise Conflict("This cart has already been checked out.", code="cart_converted", param="cart_id")
    return cart


async def _promo(
    session: AsyncSession, context: TenantContext, code: str | None, currency: str, now: datetime
) -> PromoCode | None:
    if code is None:
        return None
    promo = await session.scalar(
        select(PromoCode).where(
            PromoCode.tenant_id == context.tenant_id,
            PromoCode.livemode == context.livemode,
            PromoCode.code == code.strip().upper(),
        )
    )
    if promo is None or not promo_is_open(promo, now):
        raise InvalidRequest("This promo code is not valid.", code="promo_code_invalid", param="promo_code")
    if promo.amount_off is not None and promo.currency != currency:
        raise InvalidRequest(
            f"This promo code is for {promo.currency} orders.", code="promo_code_invalid", param="promo_code"
        )
    if not await reserve_promo_use(session, promo):
        raise Conflict("This promo code has been used up.", code="promo_code_exhausted", param="promo_code")
    return promo


async def _insert_order(session: AsyncSession, order: Order) -> None:
    for _ in range(5):
        try:
            async with session.begin_nested():
                session.add(order)
            return
        except IntegrityError:
            order.number = new_order_number()  # a collision of random numbers: draw again
    raise Conflict("Could not allocate an order number; try again.", code="order_number_collision")


async def create_order(
    session: AsyncSession,
    context: TenantContext,
    body: CheckoutIn,
    *,
    provider_name: str,
    settings: Settings,
    now: datetime,
) -> tuple[Order, list[OrderItem], PaymentAttempt]:
    """The first transaction of checkout. Any refusal rolls all of it back, cart included."""
    await check_order_limit(session, tenant_id=context.tenant_id, livemode=context.livemode, now=now)
    cart = await _convert_cart(session, context, body.cart_id)
    rows = (
        await session.execute(
            select(CartItem, Product)
            .join(Product, Product.id == CartItem.product_id)
            .where(CartItem.cart_id == cart.id)
            .order_by(CartItem.created_at, CartItem.id)
        )
    ).all()
    if not rows:
        raise InvalidRequest("The cart is empty.", code="cart_empty", param="cart_id")
    for _, product in rows:
        if not product.active or product.deleted_at is not None:
            raise Conflict(
                f"Product '{product.id}' is no longer on sale.", code="product_unavailable", param="items"
            )
    currency = rows[0][1].currency
    lines = [(item.product_id, item.quantity) for item, _ in rows]
    tracked = await reserve_stock(session, lines)

    try:
        subtotal = sum_money(
            [Money(product.price, currency).times(item.quantity) for item, product in rows], currency
        )
        promo = await _promo(session, context, body.promo_code, currency, now)
        discount = discount_for(
            subtotal,
            percent_off=promo.percent_off if promo else None,
            amount_off=Money(promo.amount_off, currency) if promo and promo.amount_off is not None else None,
        )
        total = subtotal - discount
    except MoneyError as exc:
        raise InvalidRequest(f"The order total cannot be computed: {exc}.", code="amount_invalid") from None
    if total.amount <= 0:
        raise InvalidRequest(
            "The order total must be above zero.", code="amount_too_small", param="promo_code"
        )

    customer = await find_or_create_customer(
        session,
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        email=str(body.customer.email),
        name=body.customer.name,
        phone=body.customer.phone,
    )
    order = Order(
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        number=new_order_number(),
        customer_id=customer.id,
        contact_phone=body.customer.phone,
        cart_id=cart.id,
        currency=currency,
        subtotal=subtotal.amount,
        discount=discount.amount,
        total=total.amount,
        promo_code_id=promo.id if promo else None,
        provider=provider_name,
        expires_at=now + timedelta(minutes=settings.order_ttl_minutes),
        created_at=now,
    )
    await _insert_order(session, order)
    items = [
        OrderItem(
            tenant_id=context.tenant_id,
            order_id=order.id,
            product_id=product.id,
            name=product.name,
            sku=product.sku,
            kind=product.kind,
            fulfillment=product.fulfillment,
            unit_amount=product.price,
            quantity=item.quantity,
            amount=product.price * item.quantity,
            stock_reserved=product.id in tracked,
        )
        for item, product in rows
    ]
    attempt = PaymentAttempt(
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        order_id=order.id,
        provider=provider_name,
        amount=total.amount,
        currency=currency,
    )
    session.add_all([*items, attempt])
    cart.order_id = order.id
    await session.flush()
    for action, details in (
        ("order.created", order_snapshot(order)),
        (
            "payment_attempt.created",
            {"attempt": attempt.id, "provider": provider_name, "amount": total.amount},
        ),
    ):
        record_audit(
            session,
            actor=context.actor,
            action=action,
            entity_type="order",
            entity_id=order.id,
            tenant_id=context.tenant_id,
            after=details,
        )
    await emit_merchant_event(
        session,
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        event_type="order.created",
        subject_key=order.id,
        order_id=order.id,
        # Everything a new order's rendering shows is in hand (no refunds or entitlements yet):
        # the hot path reads nothing more for it.
        data=order_object_json(
            OrderView(
                order=order,
                customer=customer,
                promo=promo,
                items=items,
                attempts=[attempt],
                refunds=[],
                entitlements=[],
            )
        ),
    )
    return order, items, attempt


async def checkout(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    context: TenantContext,
    body: CheckoutIn,
) -> CheckoutResult:
    if context.livemode:
        await require_durable_database(database)
    provider = registry.for_checkout(body.provider, livemode=context.livemode)
    account = account_for(context)
    await ensure_provider_ready(provider, account)  # before any order exists: nothing to clean up
    now = utcnow()
    async with database.session(write=True) as session:
        order, items, attempt = await create_order(
            session, context, body, provider_name=provider.name, settings=settings, now=now
        )
        customer_email = str(body.customer.email).lower()
    request = PaymentRequest(
        account=account,
        attempt_id=attempt.id,
        order_id=order.id,
        order_number=order.number,
        amount=Money(order.total, order.currency),
        customer_email=customer_email,
        return_url=body.return_url,
    )
    attempt = await request_payment_session(
        database, provider, settings, order=order, attempt=attempt, request=request, actor=context.actor
    )
    CHECKOUTS.labels(outcome="created").inc()
    return CheckoutResult(
        order=order, items=items, attempt=attempt, receipt_token=receipt_token(settings, order.id)
    )


async def storefront_order(
    session: AsyncSession, context: TenantContext, order_id: str
) -> tuple[Order, list[OrderItem]]:
    order = await get_order(session, context, order_id)
    return order, await order_items(session, order)
