"""Storefront carts: anyone with the publishable key may build one; checkout converts it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.auth.context import TenantContext
from paycore.carts.models import Cart, CartItem, CartStatus
from paycore.catalog.models import Product
from paycore.clock import utcnow
from paycore.errors import Conflict, InvalidRequest, NotFound

MAX_LINE_QUANTITY = 1000


@dataclass(frozen=True, slots=True)
class CartLine:
    item: CartItem
    product: Product

    @property
    def amount(self) -> int:
        return self.product.price * self.item.quantity


@dataclass(frozen=True, slots=True)
class CartView:
    cart: Cart
    lines: list[CartLine]

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)


async def get_cart(session: AsyncSession, context: TenantContext, cart_id: str) -> Cart:
    cart = await session.scalar(
        select(Cart).where(
            Cart.id == cart_id,
            Cart.tenant_id == context.tenant_id,
            Cart.livemode == context.livemode,
            Cart.deleted_at.is_(None),
        )
    )
    if cart is None:
        raise NotFound(f"No such cart: '{cart_id}'.", param="cart_id")
    return cart


async def _lock_open_cart(session: AsyncSession, context: TenantContext, cart_id: str) -> Cart:
    """The cart, locked against a concurrent checkout; 409 once it has been checked out."""
    cart = await get_cart(session, context, cart_id)
    result = await session.execute(
        update(Cart)
        .where(Cart.id == cart.id, Cart.status == CartStatus.OPEN)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        raise Conflict("This cart has been checked out and can no longer change.", code="cart_converted")
    return cart


async def _sellable_product(session: AsyncSession, context: TenantContext, product_id: str) -> Product:
    product = await session.scalar(
        select(Product).where(
            Product.id == product_id,
            Product.tenant_id == context.tenant_id,
            Product.livemode == context.livemode,
            Product.active.is_(True),
            Product.deleted_at.is_(None),
        )
    )
    if product is None:
        raise NotFound(f"No such product on sale: '{product_id}'.", param="product_id")
    return product


async def view_cart(session: AsyncSession, context: TenantContext, cart_id: str) -> CartView:
    cart = await get_cart(session, context, cart_id)
    rows = await session.execute(
        select(CartItem, Product)
        .join(Product, Product.id == CartItem.product_id)
        .where(CartItem.cart_id == cart.id)
        .order_by(CartItem.created_at, CartItem.id)
    )
    return CartView(cart=cart, lines=[CartLine(item=item, product=product) for item, product in rows])


async def add_item(
    session: AsyncSession, context: TenantContext, cart_id: str, *, product_id: str, quantity: int
) -> CartView:
    cart = await _lock_open_cart(session, context, cart_id)
    product = await _sellable_product(session, context, product_id)
    if cart.currency is not None and cart.currency != product.currency:
        raise InvalidRequest(
            f"This cart is in {cart.currency}; '{product.id}' is sold in {product.currency}.",
            code="currency_mismatch",
            param="product_id",
        )
    cart.currency = product.currency
    item = await session.scalar(
        select(CartItem).where(CartItem.cart_id == cart.id, CartItem.product_id == product.id)
    )
    if item is None:
        session.add(
            CartItem(tenant_id=context.tenant_id, cart_id=cart.id, product_id=product.id, quantity=quantity)
        )
    else:
        if item.quantity + quantity > MAX_LINE_QUANTITY:
            raise InvalidRequest(
                f"A cart line holds at most {MAX_LINE_QUANTITY} units.",
                code="quantity_too_large",
                param="quantity",
            )
        item.quantity += quantity
    await session.flush()
    return await view_cart(session, context, cart.id)


async def create_cart(
    session: AsyncSession, context: TenantContext, items: list[tuple[str, int]]
) -> CartView:
    """A new cart, with its first lines: one read of the products, one write of the lines."""
    quantities: dict[str, int] = {}
    for product_id, quantity in items:
        quantities[product_id] = quantities.get(product_id, 0) + quantity
    products = {
        product.id: product
        for product in await session.scalars(
            select(Product).where(
                Product.id.in_(quantities),
                Product.tenant_id == context.tenant_id,
                Product.livemode == context.livemode,
                Product.active.is_(True),
                Product.deleted_at.is_(None),
            )
        )
    }
    for product_id, quantity in quantities.items():
        if product_id not in products:
            raise NotFound(f"No such product on sale: '{product_id}'.", param="product_id")
        if quantity > MAX_LINE_QUANTITY:
            raise InvalidRequest(
                f"A cart line holds at most {MAX_LINE_QUANTITY} units.",
                code="quantity_too_large",
                param="quantity",
            )
    currencies = {product.currency for product in products.values()}
    if len(currencies) > 1:
        raise InvalidRequest(
            "A cart holds products of one currency; these are sold in " + ", ".join(sorted(currencies)) + ".",
            code="currency_mismatch",
            param="product_id",
        )
    cart = Cart(tenant_id=context.tenant_id, livemode=context.livemode, currency=next(iter(currencies), None))
    session.add(cart)
    await session.flush()
    lines = [
        CartLine(
            item=CartItem(
                tenant_id=context.tenant_id, cart_id=cart.id, product_id=product_id, quantity=quantity
            ),
            product=products[product_id],
        )
        for product_id, quantity in quantities.items()
    ]
    session.add_all([line.item for line in lines])
    await session.flush()
    return CartView(cart=cart, lines=lines)


async def _item(session: AsyncSession, cart: Cart, item_id: str) -> CartItem:
    item = await session.scalar(select(CartItem).where(CartItem.id == item_id, CartItem.cart_id == cart.id))
    if item is None:
        raise NotFound(f"No such item in this cart: '{item_id}'.", param="item_id")
    return item


async def update_item(
    session: AsyncSession, context: TenantContext, cart_id: str, item_id: str, *, quantity: int
) -> CartView:
    cart = await _lock_open_cart(session, context, cart_id)
    item = await _item(session, cart, item_id)
    item.quantity = quantity
    await session.flush()
    return await view_cart(session, context, cart.id)


async def remove_item(session: AsyncSession, context: TenantContext, cart_id: str, item_id: str) -> CartView:
    cart = await _lock_open_cart(session, context, cart_id)
    item = await _item(session, cart, item_id)
    await session.execute(delete(CartItem).where(CartItem.id == item.id))
    remaining = await session.scalar(select(CartItem.id).where(CartItem.cart_id == cart.id).limit(1))
    if remaining is None:
        cart.currency = None
    await session.flush()
    return await view_cart(session, context, cart.id)
