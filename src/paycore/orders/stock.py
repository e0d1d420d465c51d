"""Stock and promo-use reservations. Every change is one conditional UPDATE, so concurrent
checkouts can never oversell: the database checks `on_hand - reserved >= quantity` as it writes."""

from __future__ import annotations

from sqlalchemy import bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.catalog.models import Inventory, PromoCode
from paycore.db import table_of
from paycore.errors import Conflict
from paycore.orders.models import OrderItem


class OutOfStock(Conflict):
    code = "out_of_stock"


def _updated(result: object) -> bool:
    return bool(getattr(result, "rowcount", 0))


_inventory = table_of(Inventory)
_quantity = bindparam("quantity", type_=_inventory.c.reserved.type)
# Built once (checkout's hot path), its values bound at execution.
_RESERVE_STOCK = (
    update(_inventory)
    .where(
        _inventory.c.product_id == bindparam("product"),
        _inventory.c.on_hand - _inventory.c.reserved >= _quantity,
    )
    .values(reserved=_inventory.c.reserved + _quantity)
)


async def reserve_tracked_stock(session: AsyncSession, lines: list[tuple[str, int]]) -> None:
    """Reserve each line's quantity of a product known to be tracked, or raise `OutOfStock`.

    Lines are taken in product-id order so two checkouts never wait on each other in a cycle.
    """
    for product_id, quantity in sorted(lines):
        result = await session.execute(_RESERVE_STOCK, {"product": product_id, "quantity": quantity})
        if not _updated(result):
            raise OutOfStock(
                f"Product '{product_id}' does not have {quantity} unit(s) available.", param="items"
            )


async def release_stock(session: AsyncSession, items: list[OrderItem]) -> None:
    """Give back what an unpaid order held (expiry, cancel)."""
    for item in sorted(items, key=lambda line: line.product_id):
        if item.stock_reserved:
            await session.execute(
                update(Inventory)
                .where(Inventory.product_id == item.product_id, Inventory.reserved >= item.quantity)
                .values(reserved=Inventory.reserved - item.quantity)
                .execution_options(synchronize_session=False)
            )


async def sell_reserved_stock(session: AsyncSession, items: list[OrderItem]) -> None:
    """Reserved becomes sold: both on_hand and reserved drop by the quantity (order paid in time)."""
    for item in sorted(items, key=lambda line: line.product_id):
        if item.stock_reserved:
            await session.execute(
                update(Inventory)
                .where(Inventory.product_id == item.product_id, Inventory.reserved >= item.quantity)
                .values(
                    on_hand=Inventory.on_hand - item.quantity,
                    reserved=Inventory.reserved - item.quantity,
                )
                .execution_options(synchronize_session=False)
            )


async def sell_available_stock(session: AsyncSession, items: list[OrderItem]) -> bool:
    """For a late payment, whose reservation was released: sell from what is available now.

    All or nothing: on any shortfall the savepoint is rolled back and False returned.
    """
    try:
        async with session.begin_nested():
            for item in sorted(items, key=lambda line: line.product_id):
                if not item.stock_reserved:
                    continue
                result = await session.execute(
                    update(Inventory)
                    .where(
                        Inventory.product_id == item.product_id,
                        Inventory.on_hand - Inventory.reserved >= item.quantity,
                    )
                    .values(on_hand=Inventory.on_hand - item.quantity)
                    .execution_options(synchronize_session=False)
                )
                if not _updated(result):
                    raise OutOfStock(item.product_id)
    except OutOfStock:
        return False
    return True


async def reserve_promo_use(session: AsyncSession, promo: PromoCode) -> bool:
    result = await session.execute(
        update(PromoCode)
        .where(
            PromoCode.id == promo.id,
            or_(
                PromoCode.usage_limit.is_(None),
                PromoCode.usage_count + PromoCode.reserved < PromoCode.usage_limit,
            ),
        )
        .values(reserved=PromoCode.reserved + 1)
        .execution_options(synchronize_session=False)
    )
    return _updated(result)


async def release_promo_use(session: AsyncSession, promo_id: str) -> None:
    await session.execute(
        update(PromoCode)
        .where(PromoCode.id == promo_id, PromoCode.reserved > 0)
        .values(reserved=PromoCode.reserved - 1)
        .execution_options(synchronize_session=False)
    )


async def use_promo(session: AsyncSession, promo_id: str, *, was_reserved: bool) -> None:
    """Count one use for a paid order (turning its reservation into a use when it held one)."""
    values = {"usage_count": PromoCode.usage_count + 1}
    condition = [PromoCode.id == promo_id]
    if was_reserved:
        values["reserved"] = PromoCode.reserved - 1
        condition.append(PromoCode.reserved > 0)
    await session.execute(
        update(PromoCode).where(*condition).values(**values).execution_options(synchronize_session=False)
    )
