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
from functools import cache
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import audit_row, insert_audit_rows
from paycore.auth.context import TenantContext
from paycore.carts.models import Cart, CartItem, CartStatus
from paycore.carts.service import get_cart
from paycore.catalog.models import Inventory, Product, ProductKind, PromoCode
from paycore.catalog.service import promo_is_open
from paycore.checkout.attempts import account_for, ensure_provider_ready, request_payment_session
from paycore.checkout.durability import require_durable_database
from paycore.checkout.receipts import receipt_token
from paycore.checkout.schemas import CheckoutIn
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.customers.service import find_or_create_customer
from paycore.db import Database, dialect_insert, dialect_of, table_of
from paycore.errors import Conflict, InvalidRequest
from paycore.ids import new_id
from paycore.logging import get_logger
from paycore.money import Money, MoneyError, discount_for, sum_money
from paycore.ops.metrics import CHECKOUTS
from paycore.orders.models import Order, OrderItem
from paycore.orders.rendering import OrderView, order_items, order_object_json
from paycore.orders.service import get_order
from paycore.orders.states import AttemptStatus, OrderStatus
from paycore.orders.stock import reserve_promo_use, reserve_tracked_stock
from paycore.orders.transitions import order_snapshot
from paycore.outbox.service import emit_merchant_event
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import (
    PaymentRequest,
)
from paycore.payments.providers.registry import ProviderRegistry
from paycore.tenancy.limits import check_order_count, order_limit_of

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


@dataclass(frozen=True, slots=True)
class _CartLine:
    """A cart line with what the order copies from its product, read in one statement."""

    product_id: str
    quantity: int
    name: str
    sku: str | None
    kind: ProductKind
    fulfillment: dict[str, Any]
    price: int
    currency: str
    on_sale: bool
    tracked: bool  # the product has an inventory row: its stock is reserved


_carts, _cart_items, _products, _inventory = (
    table_of(Cart),
    table_of(CartItem),
    table_of(Product),
    table_of(Inventory),
)
_orders, _order_items, _attempts = table_of(Order), table_of(OrderItem), table_of(PaymentAttempt)

# The hot path's statements are built once, their values bound at execution: a reused statement
# is neither rebuilt nor re-keyed for SQLAlchemy's compiled cache on every checkout.
_TENANT = bindparam("for_tenant", type_=_carts.c.tenant_id.type)
_CONVERT_CART = (
    update(_carts)
    .where(
        _carts.c.id == bindparam("cart_id"),
        _carts.c.tenant_id == _TENANT,
        _carts.c.livemode == bindparam("for_livemode"),
        _carts.c.deleted_at.is_(None),
        _carts.c.status == CartStatus.OPEN,
    )
    .values(
        status=CartStatus.CONVERTED, order_id=bindparam("new_order_id"), updated_at=bindparam("converted_at")
    )
    .returning(_carts.c.id, order_limit_of(_TENANT))
)
_CART_LINES = (
    select(
        _cart_items.c.product_id,
        _cart_items.c.quantity,
        _products.c.name,
        _products.c.sku,
        _products.c.kind,
        _products.c.fulfillment,
        _products.c.price,
        _products.c.currency,
        _products.c.active,
        _products.c.deleted_at,
        _inventory.c.product_id.label("tracked"),
    )
    .join(_products, _products.c.id == _cart_items.c.product_id)
    .outerjoin(_inventory, _inventory.c.product_id == _cart_items.c.product_id)
    .where(_cart_items.c.cart_id == bindparam("cart_id"))
    .order_by(_cart_items.c.created_at, _cart_items.c.id)
)
_INSERT_ITEMS = insert(_order_items)
_INSERT_ATTEMPT = insert(_attempts)


@cache
def _insert_order_statement(dialect_name: str) -> Any:
    return (
        dialect_insert(dialect_name, _orders)
        .on_conflict_do_nothing(index_elements=["tenant_id", "number"])
        .returning(_orders.c.id)
    )


async def _convert_cart(
    session: AsyncSession, context: TenantContext, cart_id: str, *, order_id: str, now: datetime
) -> int | None:
    """Take the cart out of play first: a concurrent checkout of the same cart gets 409. The same
    statement names the order and reads the plan's monthly order limit (returned)."""
    converted = (
        await session.execute(
            _CONVERT_CART,
            {
                "cart_id": cart_id,
                "for_tenant": context.tenant_id,
                "for_livemode": context.livemode,
                "new_order_id": order_id,
                "converted_at": now,
            },
        )
    ).first()
    if converted is None:
        await get_cart(session, context, cart_id)  # another tenant's, deleted or unknown: 404
        raise Conflict("This cart has already been checked out.", code="cart_converted", param="cart_id")
    limit: int | None = converted[1]
    return limit


async def _cart_lines(session: AsyncSession, cart_id: str) -> list[_CartLine]:
    rows = await session.execute(_CART_LINES, {"cart_id": cart_id})
    return [
        _CartLine(
            product_id=row.product_id,
            quantity=row.quantity,
            name=row.name,
            sku=row.sku,
            kind=row.kind,
            fulfillment=row.fulfillment,
            price=row.price,
            currency=row.currency,
            on_sale=row.active and row.deleted_at is None,
            tracked=row.tracked is not None,
        )
        for row in rows
    ]


async def _promo(
    session: AsyncSession, context: TenantContext, code: str | None, currency: str, now: datetime
) -> PromoCode | None:
    """The promo named, if it may be used now; its use is reserved last (`_reserve`)."""
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
    return promo


async def _insert_order(session: AsyncSession, values: dict[str, Any]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on the number (no savepoint): no row means a collision of
    random numbers, so draw again."""
    statement = _insert_order_statement(dialect_of(session))
    for _ in range(5):
        inserted = await session.execute(statement, values)
        if inserted.first() is not None:
            return
        values["number"] = new_order_number()
    raise Conflict("Could not allocate an order number; try again.", code="order_number_collision")


async def _reserve(session: AsyncSession, lines: list[_CartLine], promo: PromoCode | None) -> None:
    """The conditional reservations, the last statements before COMMIT: the row locks of a hot
    product (and promo) are held the shortest. Stock before promo, in product-id order, as every
    other path takes them."""
    await reserve_tracked_stock(session, [(line.product_id, line.quantity) for line in lines if line.tracked])
    if promo is not None and not await reserve_promo_use(session, promo):
        raise Conflict("This promo code has been used up.", code="promo_code_exhausted", param="promo_code")


async def create_order(
    session: AsyncSession,
    context: TenantContext,
    body: CheckoutIn,
    *,
    provider_name: str,
    settings: Settings,
    now: datetime,
) -> tuple[Order, list[OrderItem], PaymentAttempt]:
    """The first transaction of checkout. Any refusal rolls all of it back, cart included.

    Written with Core statements, each row sent once and never read back; the objects returned
    are built from the values written and are not attached to the session.
    """
    order_id = new_id("ord")
    limit = await _convert_cart(session, context, body.cart_id, order_id=order_id, now=now)
    await check_order_count(
        session, tenant_id=context.tenant_id, livemode=context.livemode, now=now, limit=limit
    )
    lines = await _cart_lines(session, body.cart_id)
    if not lines:
        raise InvalidRequest("The cart is empty.", code="cart_empty", param="cart_id")
    for line in lines:
        if not line.on_sale:
            raise Conflict(
                f"Product '{line.product_id}' is no longer on sale.",
                code="product_unavailable",
                param="items",
            )
    currency = lines[0].currency

    try:
        subtotal = sum_money([Money(line.price, currency).times(line.quantity) for line in lines], currency)
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
    order_values: dict[str, Any] = {
        "id": order_id,
        "tenant_id": context.tenant_id,
        "livemode": context.livemode,
        "number": new_order_number(),
        "customer_id": customer.id,
        "contact_phone": body.customer.phone,
        "cart_id": body.cart_id,
        "status": OrderStatus.PENDING_PAYMENT,
        "currency": currency,
        "subtotal": subtotal.amount,
        "discount": discount.amount,
        "total": total.amount,
        "amount_paid": 0,
        "amount_refunded": 0,
        "promo_code_id": promo.id if promo else None,
        "provider": provider_name,
        "review_reason": None,
        "expires_at": now + timedelta(minutes=settings.order_ttl_minutes),
        "paid_at": None,
        "fulfilled_at": None,
        "canceled_at": None,
        "version": 1,
        "deleted_at": None,
        "created_at": now,
        "updated_at": now,
    }
    await _insert_order(session, order_values)
    order = Order(**order_values)
    item_values: list[dict[str, Any]] = [
        {
            "id": new_id("oi"),
            "tenant_id": context.tenant_id,
            "order_id": order_id,
            "product_id": line.product_id,
            "name": line.name,
            "sku": line.sku,
            "kind": line.kind,
            "fulfillment": line.fulfillment,
            "unit_amount": line.price,
            "quantity": line.quantity,
            "amount": line.price * line.quantity,
            "stock_reserved": line.tracked,
        }
        for line in lines
    ]
    await session.execute(_INSERT_ITEMS, item_values)
    items = [OrderItem(**values) for values in item_values]
    attempt_values: dict[str, Any] = {
        "id": new_id("pay"),
        "tenant_id": context.tenant_id,
        "livemode": context.livemode,
        "order_id": order_id,
        "provider": provider_name,
        "provider_ref": None,
        "amount": total.amount,
        "currency": currency,
        "amount_received": None,
        "status": AttemptStatus.CREATED,
        "redirect_url": None,
        "client_data": {},
        "failure_reason": None,
        "succeeded_at": None,
        "reconcile_checks": 0,
        "next_reconcile_at": None,
        "created_at": now,
        "updated_at": now,
    }
    await session.execute(_INSERT_ATTEMPT, attempt_values)
    attempt = PaymentAttempt(**attempt_values)
    await insert_audit_rows(
        session,
        [
            audit_row(
                actor=context.actor,
                action=action,
                entity_type="order",
                entity_id=order_id,
                tenant_id=context.tenant_id,
                after=details,
            )
            for action, details in (
                ("order.created", order_snapshot(order)),
                (
                    "payment_attempt.created",
                    {"attempt": attempt.id, "provider": provider_name, "amount": total.amount},
                ),
            )
        ],
    )
    await emit_merchant_event(
        session,
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        event_type="order.created",
        subject_key=order_id,
        order_id=order_id,
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
    await _reserve(session, lines, promo)
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
