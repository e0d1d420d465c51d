from __future__ import annotations

from fastapi import APIRouter, status

from paycore.auth.dependencies import StorefrontKeyDep
from paycore.carts import service
from paycore.carts.schemas import CartCreate, CartItemIn, CartItemOut, CartItemUpdate, CartOut
from paycore.carts.service import CartView
from paycore.dependencies import ReadSessionDep, WriteSessionDep

router = APIRouter(prefix="/v1/carts", tags=["storefront"])


def cart_out(view: CartView) -> CartOut:
    return CartOut(
        id=view.cart.id,
        livemode=view.cart.livemode,
        status=view.cart.status,
        currency=view.cart.currency,
        items=[
            CartItemOut(
                id=line.item.id,
                product_id=line.product.id,
                name=line.product.name,
                unit_amount=line.product.price,
                quantity=line.item.quantity,
                amount=line.amount,
            )
            for line in view.lines
        ],
        subtotal=view.subtotal,
        order_id=view.cart.order_id,
        created=view.cart.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a cart")
async def create_cart(body: CartCreate, context: StorefrontKeyDep, session: WriteSessionDep) -> CartOut:
    """A cart with its first lines; prices come from the catalog, never from the request. Takes a
    publishable key (or the merchant's secret key)."""
    items = [(item.product_id, item.quantity) for item in body.items]
    return cart_out(await service.create_cart(session, context, items))


@router.get("/{cart_id}", summary="Retrieve a cart")
async def read_cart(cart_id: str, context: StorefrontKeyDep, session: ReadSessionDep) -> CartOut:
    """The cart with its lines and current totals. Takes a publishable key (or the merchant's secret
    key)."""
    return cart_out(await service.view_cart(session, context, cart_id))


@router.post("/{cart_id}/items", summary="Add a product (adds to the quantity if already there)")
async def add_item(
    cart_id: str, body: CartItemIn, context: StorefrontKeyDep, session: WriteSessionDep
) -> CartOut:
    """Adds a product to the cart, or adds to its quantity when it is already there. A cart already
    checked out is refused (409). Takes a publishable key (or the merchant's secret key)."""
    view = await service.add_item(
        session, context, cart_id, product_id=body.product_id, quantity=body.quantity
    )
    return cart_out(view)


@router.patch("/{cart_id}/items/{item_id}", summary="Change a line's quantity")
async def update_item(
    cart_id: str, item_id: str, body: CartItemUpdate, context: StorefrontKeyDep, session: WriteSessionDep
) -> CartOut:
    """Sets a line's quantity. Takes a publishable key (or the merchant's secret key)."""
    return cart_out(await service.update_item(session, context, cart_id, item_id, quantity=body.quantity))


@router.delete("/{cart_id}/items/{item_id}", summary="Remove a line")
async def remove_item(
    cart_id: str, item_id: str, context: StorefrontKeyDep, session: WriteSessionDep
) -> CartOut:
    """Removes a line from the cart. Takes a publishable key (or the merchant's secret key)."""
    return cart_out(await service.remove_item(session, context, cart_id, item_id))
