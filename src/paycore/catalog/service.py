"""Products, stock and promo codes. Services take a session and never commit.

Every query is scoped by the caller's tenant and mode: another tenant's product, or a live product
seen with a test key, does not exist (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import record_audit
from paycore.auth.context import TenantContext
from paycore.catalog.models import Inventory, Product, ProductKind, PromoCode
from paycore.catalog.schemas import PromoCodeCreate
from paycore.clock import utcnow
from paycore.db import upsert_insert
from paycore.errors import Conflict, NotFound
from paycore.pagination import Page, paginate
from paycore.provisioning_targets.service import check_provisioning_spec
from paycore.server_templates.service import check_product_fulfillment
from paycore.tenancy.limits import check_product_limit

DEFAULT_FULFILLMENT = {
    ProductKind.PHYSICAL: {"type": "stock", "config": {}},
    ProductKind.DIGITAL: {"type": "entitlement", "config": {}},
    ProductKind.SERVICE: {"type": "entitlement", "config": {}},
}


def product_snapshot(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "sku": product.sku,
        "price": product.price,
        "currency": product.currency,
        "kind": product.kind.value,
        "fulfillment": product.fulfillment,
        "active": product.active,
        "deleted_at": product.deleted_at.isoformat() if product.deleted_at else None,
    }


async def create_product(
    session: AsyncSession,
    context: TenantContext,
    *,
    name: str,
    price: int,
    currency: str,
    kind: ProductKind,
    sku: str | None = None,
    description: str | None = None,
    fulfillment: dict[str, Any] | None = None,
    active: bool = True,
) -> Product:
    await check_product_fulfillment(session, tenant_id=context.tenant_id, fulfillment=fulfillment)
    await check_provisioning_spec(session, context, fulfillment)
    await check_product_limit(session, tenant_id=context.tenant_id, livemode=context.livemode)
    product = Product(
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        name=name,
        price=price,
        currency=currency,
        kind=kind,
        sku=sku,
        description=description,
        fulfillment=fulfillment or DEFAULT_FULFILLMENT[kind],
        active=active,
    )
    try:
        async with session.begin_nested():
            session.add(product)
    except IntegrityError:
        raise Conflict(
            f"A product with sku '{sku}' already exists.", code="sku_exists", param="sku"
        ) from None
    record_audit(
        session,
        actor=context.actor,
        action="product.created",
        entity_type="product",
        entity_id=product.id,
        tenant_id=context.tenant_id,
        after=product_snapshot(product),
    )
    return product


async def get_product(session: AsyncSession, context: TenantContext, product_id: str) -> Product:
    product = await session.scalar(
        select(Product).where(
            Product.id == product_id,
            Product.tenant_id == context.tenant_id,
            Product.livemode == context.livemode,
        )
    )
    if product is None:
        raise NotFound(f"No such product: '{product_id}'.", param="id")
    return product


async def list_products(
    session: AsyncSession, context: TenantContext, *, limit: int, cursor: str | None
) -> Page[Product]:
    statement = select(Product).where(
        Product.tenant_id == context.tenant_id, Product.livemode == context.livemode
    )
    return await paginate(
        session, statement, created_at=Product.created_at, id_column=Product.id, limit=limit, cursor=cursor
    )


async def update_product(
    session: AsyncSession, context: TenantContext, product_id: str, changes: dict[str, Any]
) -> Product:
    product = await get_product(session, context, product_id)
    if product.deleted_at is not None:
        raise Conflict("A deleted product cannot be changed.", code="product_deleted")
    if "fulfillment" in changes:
        await check_product_fulfillment(
            session, tenant_id=context.tenant_id, fulfillment=changes["fulfillment"]
        )
    await check_provisioning_spec(session, context, changes.get("fulfillment"))
    before = product_snapshot(product)
    for field, value in changes.items():
        setattr(product, field, value)
    await session.flush()
    record_audit(
        session,
        actor=context.actor,
        action="product.updated",
        entity_type="product",
        entity_id=product.id,
        tenant_id=context.tenant_id,
        before=before,
        after=product_snapshot(product),
    )
    return product


async def delete_product(session: AsyncSession, context: TenantContext, product_id: str) -> Product:
    """Soft delete: gone from the storefront, kept for the orders that bought it."""
    product = await get_product(session, context, product_id)
    if product.deleted_at is None:
        before = product_snapshot(product)
        product.deleted_at = utcnow()
        product.active = False
        await session.flush()
        record_audit(
            session,
            actor=context.actor,
            action="product.deleted",
            entity_type="product",
            entity_id=product.id,
            tenant_id=context.tenant_id,
            before=before,
            after=product_snapshot(product),
        )
    return product


async def get_inventory(session: AsyncSession, context: TenantContext, product_id: str) -> Inventory | None:
    product = await get_product(session, context, product_id)
    return await session.get(Inventory, product.id)


async def set_inventory(
    session: AsyncSession, context: TenantContext, product_id: str, on_hand: int
) -> Inventory:
    """Set the units on hand. Never below what unpaid orders hold reserved."""
    product = await get_product(session, context, product_id)
    current = await session.get(Inventory, product.id, with_for_update=True)
    before = None if current is None else {"on_hand": current.on_hand, "reserved": current.reserved}
    # One statement creates or updates the row, and refuses to go below what unpaid orders hold,
    # so neither a concurrent first PUT nor a checkout reserving meanwhile can break the rule.
    now = utcnow()
    insert = upsert_insert(session, Inventory.__table__).values(
        product_id=product.id, tenant_id=context.tenant_id, on_hand=on_hand, reserved=0, updated_at=now
    )
    written = await session.execute(
        insert.on_conflict_do_update(
            index_elements=[Inventory.product_id],
            set_={"on_hand": on_hand, "updated_at": now},
            where=Inventory.reserved <= on_hand,
        ).returning(Inventory.product_id)
    )
    if written.scalar_one_or_none() is None:
        reserved = current.reserved if current is not None else "Some"
        raise Conflict(
            f"{reserved} units are reserved by unpaid orders; on_hand cannot go below that.",
            code="inventory_below_reserved",
            param="on_hand",
        )
    inventory = await session.get(Inventory, product.id, populate_existing=True)
    assert inventory is not None
    await session.flush()
    record_audit(
        session,
        actor=context.actor,
        action="inventory.set",
        entity_type="product",
        entity_id=product.id,
        tenant_id=context.tenant_id,
        before=before,
        after={"on_hand": inventory.on_hand, "reserved": inventory.reserved},
    )
    return inventory


async def list_storefront_products(
    session: AsyncSession, context: TenantContext, *, limit: int, cursor: str | None
) -> Page[tuple[Product, Inventory | None]]:
    statement = select(Product).where(
        Product.tenant_id == context.tenant_id,
        Product.livemode == context.livemode,
        Product.active.is_(True),
        Product.deleted_at.is_(None),
    )
    page = await paginate(
        session, statement, created_at=Product.created_at, id_column=Product.id, limit=limit, cursor=cursor
    )
    stock = {
        row.product_id: row
        for row in await session.scalars(
            select(Inventory).where(Inventory.product_id.in_([product.id for product in page.items]))
        )
    }
    return Page(
        items=[(product, stock.get(product.id)) for product in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


async def create_promo_code(
    session: AsyncSession, context: TenantContext, data: PromoCodeCreate
) -> PromoCode:
    promo = PromoCode(
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        code=data.code.upper(),
        percent_off=data.percent_off,
        amount_off=data.amount_off,
        currency=data.currency,
        usage_limit=data.usage_limit,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
    )
    try:
        async with session.begin_nested():
            session.add(promo)
    except IntegrityError:
        raise Conflict(
            f"A promo code '{promo.code}' already exists.", code="promo_code_exists", param="code"
        ) from None
    record_audit(
        session,
        actor=context.actor,
        action="promo_code.created",
        entity_type="promo_code",
        entity_id=promo.id,
        tenant_id=context.tenant_id,
        after=data.model_dump(mode="json"),
    )
    return promo


async def list_promo_codes(
    session: AsyncSession, context: TenantContext, *, limit: int, cursor: str | None
) -> Page[PromoCode]:
    statement = select(PromoCode).where(
        PromoCode.tenant_id == context.tenant_id, PromoCode.livemode == context.livemode
    )
    return await paginate(
        session,
        statement,
        created_at=PromoCode.created_at,
        id_column=PromoCode.id,
        limit=limit,
        cursor=cursor,
    )


def promo_is_open(promo: PromoCode, now: datetime) -> bool:
    if not promo.active:
        return False
    if promo.starts_at is not None and now < promo.starts_at:
        return False
    return promo.ends_at is None or now < promo.ends_at
