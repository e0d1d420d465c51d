from __future__ import annotations

from fastapi import APIRouter, status

from paycore.auth.dependencies import ReadKeyDep, StorefrontKeyDep, WriteKeyDep
from paycore.catalog import service
from paycore.catalog.models import Inventory, Product, PromoCode
from paycore.catalog.schemas import (
    InventoryIn,
    InventoryOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    PromoCodeCreate,
    PromoCodeOut,
    StorefrontProductOut,
)
from paycore.dependencies import ReadSessionDep, WriteSessionDep
from paycore.schemas import DEFAULT_LIMIT, CursorQuery, LimitQuery, ListOut

router = APIRouter(prefix="/v1", tags=["catalog"])
storefront_router = APIRouter(prefix="/v1/storefront", tags=["storefront"])


def product_out(product: Product) -> ProductOut:
    return ProductOut(
        id=product.id,
        livemode=product.livemode,
        sku=product.sku,
        name=product.name,
        description=product.description,
        price=product.price,
        currency=product.currency,
        kind=product.kind,
        fulfillment=product.fulfillment,
        active=product.active,
        deleted=product.deleted_at is not None,
        created=product.created_at,
        updated=product.updated_at,
    )


def inventory_out(product_id: str, inventory: Inventory | None) -> InventoryOut:
    if inventory is None:
        return InventoryOut(product_id=product_id, tracked=False, on_hand=None, reserved=None, available=None)
    return InventoryOut(
        product_id=product_id,
        tracked=True,
        on_hand=inventory.on_hand,
        reserved=inventory.reserved,
        available=inventory.on_hand - inventory.reserved,
    )


def promo_out(promo: PromoCode) -> PromoCodeOut:
    return PromoCodeOut(
        id=promo.id,
        livemode=promo.livemode,
        code=promo.code,
        percent_off=promo.percent_off,
        amount_off=promo.amount_off,
        currency=promo.currency,
        usage_limit=promo.usage_limit,
        usage_count=promo.usage_count,
        starts_at=promo.starts_at,
        ends_at=promo.ends_at,
        active=promo.active,
        created=promo.created_at,
    )


@router.post("/products", status_code=status.HTTP_201_CREATED, summary="Create a product")
async def create_product(body: ProductCreate, context: WriteKeyDep, session: WriteSessionDep) -> ProductOut:
    """A product with a price in minor units of its currency, and its kind (physical, digital,
    service), which decides how a paid order is fulfilled. Stock is not counted until it is set with
    `PUT /v1/products/{id}/inventory`. Counts against the plan's product limit. Needs a
    secret key with the `write` scope."""
    product = await service.create_product(
        session,
        context,
        name=body.name,
        price=body.price,
        currency=body.currency,
        kind=body.kind,
        sku=body.sku,
        description=body.description,
        fulfillment=body.fulfillment.model_dump() if body.fulfillment else None,
        active=body.active,
    )
    return product_out(product)


@router.get("/products", summary="List products, newest first")
async def list_products(
    context: ReadKeyDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[ProductOut]:
    """The tenant's products in this mode, deleted ones left out; page with `limit` and `cursor`. Needs
    a secret key with the `read` scope."""
    page = await service.list_products(session, context, limit=limit, cursor=cursor)
    return ListOut(
        data=[product_out(p) for p in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )


@router.get("/products/{product_id}", summary="Retrieve a product")
async def read_product(product_id: str, context: ReadKeyDep, session: ReadSessionDep) -> ProductOut:
    """One product by id; another tenant's or the other mode's product is a 404. Needs a secret key
    with the `read` scope."""
    return product_out(await service.get_product(session, context, product_id))


@router.patch("/products/{product_id}", summary="Change a product")
async def update_product(
    product_id: str, body: ProductUpdate, context: WriteKeyDep, session: WriteSessionDep
) -> ProductOut:
    """Changes only the fields sent. Orders already placed keep the name and price they were sold at.
    Needs a secret key with the `write` scope."""
    changes = body.model_dump(exclude_unset=True)
    if "fulfillment" in changes and body.fulfillment is not None:
        changes["fulfillment"] = body.fulfillment.model_dump()
    return product_out(await service.update_product(session, context, product_id, changes))


@router.delete("/products/{product_id}", summary="Delete a product (soft: kept for past orders)")
async def delete_product(product_id: str, context: WriteKeyDep, session: WriteSessionDep) -> ProductOut:
    """The product leaves the catalog and the storefront; past orders still show it. Answers the
    product as it was deleted. Needs a secret key with the `write` scope."""
    return product_out(await service.delete_product(session, context, product_id))


@router.put("/products/{product_id}/inventory", summary="Set the units on hand")
async def set_inventory(
    product_id: str, body: InventoryIn, context: WriteKeyDep, session: WriteSessionDep
) -> InventoryOut:
    """Sets the units on hand. Units reserved by unpaid orders stay reserved; on hand may not go below
    them. Needs a secret key with the `write` scope."""
    inventory = await service.set_inventory(session, context, product_id, body.on_hand)
    return inventory_out(product_id, inventory)


@router.get("/products/{product_id}/inventory", summary="Units on hand, reserved and available")
async def read_inventory(product_id: str, context: ReadKeyDep, session: ReadSessionDep) -> InventoryOut:
    """Units on hand, reserved by unpaid orders, and available to sell (on hand minus reserved). Needs
    a secret key with the `read` scope."""
    return inventory_out(product_id, await service.get_inventory(session, context, product_id))


@router.post("/promo_codes", status_code=status.HTTP_201_CREATED, summary="Create a promo code")
async def create_promo_code(
    body: PromoCodeCreate, context: WriteKeyDep, session: WriteSessionDep
) -> PromoCodeOut:
    """A code customers enter at checkout for a percentage or a fixed amount off, optionally with a
    usage limit. A use is reserved at checkout and given back if the order is not paid. Needs a
    secret key with the `write` scope."""
    return promo_out(await service.create_promo_code(session, context, body))


@router.get("/promo_codes", summary="List promo codes, newest first")
async def list_promo_codes(
    context: ReadKeyDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[PromoCodeOut]:
    """The tenant's promo codes in this mode, with how often each was used; page with `limit` and
    `cursor`. Needs a secret key with the `read` scope."""
    page = await service.list_promo_codes(session, context, limit=limit, cursor=cursor)
    return ListOut(
        data=[promo_out(p) for p in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )


@storefront_router.get("/products", summary="Products on sale, with availability")
async def list_storefront_products(
    context: StorefrontKeyDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[StorefrontProductOut]:
    """What a storefront shows: products on sale, with price and whether they can be bought now. Safe
    with a publishable key. Takes a publishable key (or the merchant's secret key)."""
    page = await service.list_storefront_products(session, context, limit=limit, cursor=cursor)
    data = [
        StorefrontProductOut(
            id=product.id,
            name=product.name,
            description=product.description,
            price=product.price,
            currency=product.currency,
            kind=product.kind,
            available=None if stock is None else stock.on_hand - stock.reserved,
        )
        for product, stock in page.items
    ]
    return ListOut(data=data, has_more=page.has_more, next_cursor=page.next_cursor)
