"""A lean reference for paycore's checkout: the same durable work, written plainly, nothing of paycore's.

`bench/checkout.py` and `bench/open_loop.py` serve it with uvicorn (the server paycore uses, with as
many workers) on its own throwaway PostgreSQL database and measure it in the same run as paycore.
It is what this stack (FastAPI, SQLAlchemy Core, asyncpg, PostgreSQL) costs for the work when no
framework of our own sits in between; paycore is judged against it (issue 13).

One cart → checkout here is two requests, each one transaction:
- POST /v1/carts: the API key looked up by hash, the products read, a cart row and its items.
- POST /v1/checkout: the API key looked up by hash; the Idempotency-Key's row opened (a concurrent
  request with the same key waits on its unique index, then replays); the cart converted; its lines
  and products read; the customer upserted; order, line and payment attempt inserted; two audit rows
  and the merchant event's outbox row (one statement each); the idempotency row finished with the
  answer; then the conditional stock reservation, the LAST statement before COMMIT so the hot
  product's row lock is held for the shortest time.
Not done here, unlike paycore: rate limits, a provider session (the sandbox's row), sealing the
saved answer, order-count limits. Its tables (`reference_tables.py`) mirror paycore's roughly.

    uvicorn --app-dir bench reference_checkout:create_app --factory   (REFERENCE_DATABASE_URL=…)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from reference_tables import (
    api_keys,
    audit_log,
    cart_items,
    carts,
    customers,
    idempotent_requests,
    inventory,
    metadata,
    order_items,
    orders,
    outbox,
    payment_attempts,
    products,
    tenants,
)
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

DATABASE_URL_ENV = "REFERENCE_DATABASE_URL"
POOL_SIZE_ENV = "REFERENCE_POOL_SIZE"
MAX_OVERFLOW_ENV = "REFERENCE_MAX_OVERFLOW"
RECEIPT_SECRET = b"reference-receipts"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def key_hash(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()


class ItemIn(BaseModel):
    product_id: str = Field(min_length=1, max_length=40)
    quantity: int = Field(ge=1, le=1000)


class CartIn(BaseModel):
    items: list[ItemIn] = Field(min_length=1, max_length=100)


class CartOut(BaseModel):
    id: str
    currency: str
    items: list[ItemIn]


class CustomerIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)


class CheckoutIn(BaseModel):
    cart_id: str = Field(min_length=1, max_length=40)
    customer: CustomerIn


class LineOut(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_amount: int
    amount: int


class PaymentOut(BaseModel):
    id: str
    provider: str
    status: str
    amount: int


class CheckoutOut(BaseModel):
    id: str
    number: str
    status: str
    currency: str
    total: int
    items: list[LineOut]
    payment: PaymentOut
    receipt_token: str
    expires_at: datetime


class Refused(Exception):
    def __init__(self, status_code: int, code: str) -> None:
        self.status_code, self.code = status_code, code


# The statements of the hot path, built once: executing a prebuilt statement with bound values
# skips rebuilding it and most of computing its cache key on every request (Core's cheapest use).
KEY_BY_HASH = (
    select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.mode, api_keys.c.expires_at)
    .join(tenants, tenants.c.id == api_keys.c.tenant_id)
    .where(
        api_keys.c.secret_hash == bindparam("secret_hash"),
        api_keys.c.revoked_at.is_(None),
        tenants.c.status == "active",
    )
)
PRODUCTS_ON_SALE = select(products.c.id, products.c.currency).where(
    products.c.tenant_id == bindparam("tenant_id"),
    products.c.livemode == bindparam("livemode"),
    products.c.id.in_(bindparam("ids", expanding=True)),
    products.c.active.is_(True),
    products.c.deleted_at.is_(None),
)
OPEN_IDEMPOTENCY_ROW = (
    pg_insert(idempotent_requests).on_conflict_do_nothing().returning(idempotent_requests.c.id)
)
SAVED_ANSWER = select(
    idempotent_requests.c.request_hash,
    idempotent_requests.c.response_status,
    idempotent_requests.c.response_body,
).where(
    idempotent_requests.c.tenant_id == bindparam("tenant_id"),
    idempotent_requests.c.livemode == bindparam("livemode"),
    idempotent_requests.c.api_key_id == bindparam("api_key_id"),
    idempotent_requests.c.key == bindparam("key"),
)
FINISH_IDEMPOTENCY_ROW = (
    update(idempotent_requests)
    .where(idempotent_requests.c.id == bindparam("row_id"))
    .values(
        state="done",
        response_status=bindparam("answer_status"),
        response_body=bindparam("answer_body"),
        completed_at=bindparam("now"),
    )
)
CONVERT_CART = (
    update(carts)
    .where(
        carts.c.id == bindparam("cart_id"),
        carts.c.tenant_id == bindparam("of_tenant"),
        carts.c.livemode == bindparam("in_livemode"),
        carts.c.status == "open",
    )
    .values(status="converted", order_id=bindparam("new_order_id"), updated_at=bindparam("now"))
    .returning(carts.c.id)
)
CART_LINES = (
    select(
        cart_items.c.product_id,
        cart_items.c.quantity,
        products.c.name,
        products.c.kind,
        products.c.fulfillment,
        products.c.price,
        products.c.currency,
        inventory.c.product_id.is_not(None).label("tracked"),
    )
    .join(products, products.c.id == cart_items.c.product_id)
    .outerjoin(inventory, inventory.c.product_id == products.c.id)
    .where(cart_items.c.cart_id == bindparam("cart_id"))
    .order_by(cart_items.c.created_at, cart_items.c.id)
)
_customer_insert = pg_insert(customers)
UPSERT_CUSTOMER = _customer_insert.on_conflict_do_update(
    index_elements=["tenant_id", "livemode", "email"],
    set_={"updated_at": _customer_insert.excluded.updated_at},
).returning(customers.c.id)
RESERVE_STOCK = (
    update(inventory)
    .where(
        inventory.c.product_id == bindparam("product"),
        inventory.c.on_hand - inventory.c.reserved >= bindparam("quantity"),
    )
    .values(reserved=inventory.c.reserved + bindparam("quantity"), updated_at=bindparam("now"))
)


async def authenticate(connection: AsyncConnection, authorization: str | None) -> tuple[str, str, bool]:
    """(tenant id, key id, livemode) of a valid key, looked up by the hash of its text."""
    presented = (authorization or "").removeprefix("Bearer ")
    row = (await connection.execute(KEY_BY_HASH, {"secret_hash": key_hash(presented)})).first()
    if row is None or (row.expires_at is not None and row.expires_at <= datetime.now(UTC)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid_api_key")
    return row.tenant_id, row.id, row.mode == "live"


async def create_cart(connection: AsyncConnection, tenant_id: str, livemode: bool, body: CartIn) -> CartOut:
    wanted = sorted({item.product_id for item in body.items})
    found = (
        await connection.execute(
            PRODUCTS_ON_SALE, {"tenant_id": tenant_id, "livemode": livemode, "ids": wanted}
        )
    ).all()
    currencies = {row.currency for row in found}
    if len(found) != len(wanted) or len(currencies) != 1:
        raise Refused(status.HTTP_400_BAD_REQUEST, "product_unavailable")
    now, cart_id, currency = datetime.now(UTC), new_id("cart"), currencies.pop()
    cart = {
        "id": cart_id,
        "tenant_id": tenant_id,
        "livemode": livemode,
        "status": "open",
        "currency": currency,
    }
    await connection.execute(insert(carts), cart | {"order_id": None, "created_at": now, "updated_at": now})
    await connection.execute(
        insert(cart_items),
        [
            {
                "id": new_id("ci"),
                "tenant_id": tenant_id,
                "cart_id": cart_id,
                "product_id": item.product_id,
                "quantity": item.quantity,
                "created_at": now,
            }
            for item in body.items
        ],
    )
    return CartOut(id=cart_id, currency=currency, items=body.items)


async def open_idempotency_row(
    connection: AsyncConnection, tenant_id: str, key_id: str, livemode: bool, key: str, request_hash: str
) -> tuple[str | None, tuple[int, str] | None]:
    """(row id, None) when this request owns the key; (None, saved answer) when it was answered.

    A concurrent request with the same key waits here on the unique index until the first one
    commits (then replays its answer) or rolls back (then runs itself)."""
    row_id = new_id("idem")
    owner = {"tenant_id": tenant_id, "livemode": livemode, "api_key_id": key_id, "key": key}
    claimed = await connection.scalar(
        OPEN_IDEMPOTENCY_ROW,
        owner
        | {
            "id": row_id,
            "method": "POST",
            "path": "/v1/checkout",
            "request_hash": request_hash,
            "state": "in_flight",
            "response_status": None,
            "response_body": None,
            "created_at": datetime.now(UTC),
            "completed_at": None,
        },
    )
    if claimed is not None:
        return row_id, None
    saved = (await connection.execute(SAVED_ANSWER, owner)).one()
    if saved.request_hash != request_hash:
        raise Refused(status.HTTP_422_UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    return None, (saved.response_status, saved.response_body)


async def checkout(
    connection: AsyncConnection, tenant_id: str, livemode: bool, body: CheckoutIn
) -> tuple[CheckoutOut, list[tuple[str, int]]]:
    """Everything but the stock reservation, which the caller runs last: (answer, lines to reserve)."""
    now, order_id = datetime.now(UTC), new_id("ord")
    scope = {"tenant_id": tenant_id, "livemode": livemode}
    converted = await connection.scalar(
        CONVERT_CART,
        {
            "cart_id": body.cart_id,
            "of_tenant": tenant_id,
            "in_livemode": livemode,
            "new_order_id": order_id,
            "now": now,
        },
    )
    if converted is None:
        raise Refused(status.HTTP_409_CONFLICT, "cart_converted")
    lines = (await connection.execute(CART_LINES, {"cart_id": body.cart_id})).all()
    currency = lines[0].currency
    total = sum(line.price * line.quantity for line in lines)
    customer = body.customer
    customer_id = await connection.scalar(
        UPSERT_CUSTOMER,
        scope
        | {
            "id": new_id("cus"),
            "email": customer.email.lower(),
            "name": customer.name,
            "phone": customer.phone,
            "created_at": now,
            "updated_at": now,
        },
    )
    number, expires_at = new_order_number(), now + timedelta(minutes=60)
    order = {
        "id": order_id,
        "number": number,
        "customer_id": customer_id,
        "cart_id": body.cart_id,
        "status": "pending_payment",
        "currency": currency,
        "subtotal": total,
        "total": total,
        "provider": "sandbox",
        "version": 1,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }
    await connection.execute(insert(orders), scope | order)
    items = [
        {
            "id": new_id("oi"),
            "tenant_id": tenant_id,
            "order_id": order_id,
            "product_id": line.product_id,
            "name": line.name,
            "kind": line.kind,
            "fulfillment": line.fulfillment,
            "unit_amount": line.price,
            "quantity": line.quantity,
            "amount": line.price * line.quantity,
            "stock_reserved": line.tracked,
        }
        for line in lines
    ]
    await connection.execute(insert(order_items), items)
    attempt_id = new_id("pay")
    attempt = {
        "id": attempt_id,
        "order_id": order_id,
        "provider": "sandbox",
        "provider_ref": None,
        "amount": total,
        "currency": currency,
        "status": "created",
        "created_at": now,
        "updated_at": now,
    }
    await connection.execute(insert(payment_attempts), scope | attempt)
    answer = CheckoutOut(
        id=order_id,
        number=number,
        status="pending_payment",
        currency=currency,
        total=total,
        items=[
            LineOut(
                product_id=item["product_id"],
                name=item["name"],
                quantity=item["quantity"],
                unit_amount=item["unit_amount"],
                amount=item["amount"],
            )
            for item in items
        ],
        payment=PaymentOut(id=attempt_id, provider="sandbox", status="created", amount=total),
        receipt_token=hmac.new(RECEIPT_SECRET, order_id.encode(), "sha256").hexdigest(),
        expires_at=expires_at,
    )
    audit = {"tenant_id": tenant_id, "actor": "storefront", "entity_type": "order", "entity_id": order_id}
    await connection.execute(
        insert(audit_log),
        [
            audit
            | {"action": "order.created", "after": {"status": "pending_payment", "total": total}, "at": now},
            audit | {"action": "payment_attempt.created", "after": {"attempt": attempt_id}, "at": now},
        ],
    )
    message = {
        "id": new_id("msg"),
        "channel": "merchant_webhook",
        "topic": "order.created",
        "dedupe_key": f"order.created:{order_id}",
        "ordering_key": order_id,
        "payload": answer.model_dump(mode="json"),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    await connection.execute(insert(outbox), scope | message)
    reserve = sorted((line.product_id, line.quantity) for line in lines if line.tracked)
    return answer, reserve


async def reserve_stock(connection: AsyncConnection, lines: Sequence[tuple[str, int]]) -> None:
    """In product-id order (no deadlock between two carts); refused when any line is short."""
    now = datetime.now(UTC)
    for product_id, quantity in lines:
        reserved = await connection.execute(
            RESERVE_STOCK, {"product": product_id, "quantity": quantity, "now": now}
        )
        if reserved.rowcount != 1:
            raise Refused(status.HTTP_409_CONFLICT, "out_of_stock")


def new_order_number() -> str:
    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def create_engine_from_environment() -> AsyncEngine:
    return create_async_engine(
        os.environ[DATABASE_URL_ENV],
        pool_size=int(os.environ.get(POOL_SIZE_ENV, "10")),
        max_overflow=int(os.environ.get(MAX_OVERFLOW_ENV, "10")),
        # As paycore: no JIT for short OLTP statements.
        connect_args={"server_settings": {"application_name": "reference", "jit": "off"}},
    )


def create_app() -> FastAPI:
    engine = create_engine_from_environment()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> Response:
        body = json.dumps({"error": {"code": exc.code}})
        return Response(body, status_code=exc.status_code, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        async with engine.connect() as connection:
            await connection.execute(select(1))
        return {"status": "ready"}

    @app.post("/v1/carts", status_code=status.HTTP_201_CREATED)
    async def post_cart(body: CartIn, authorization: Annotated[str | None, Header()] = None) -> CartOut:
        async with engine.begin() as connection:
            tenant_id, _, livemode = await authenticate(connection, authorization)
            return await create_cart(connection, tenant_id, livemode, body)

    # A replay answers the saved text as it is; a fresh checkout answers the model.
    @app.post("/v1/checkout", status_code=status.HTTP_201_CREATED, response_model=CheckoutOut)
    async def post_checkout(
        body: CheckoutIn,
        authorization: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> Any:
        request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        async with engine.begin() as connection:
            tenant_id, key_id, livemode = await authenticate(connection, authorization)
            row_id = None
            if idempotency_key is not None:
                row_id, saved = await open_idempotency_row(
                    connection, tenant_id, key_id, livemode, idempotency_key, request_hash
                )
                if saved is not None:
                    return Response(saved[1], status_code=saved[0], media_type="application/json")
            answer, reserve = await checkout(connection, tenant_id, livemode, body)
            if row_id is not None:
                finished = {
                    "answer_status": 201,
                    "answer_body": answer.model_dump_json(),
                    "now": datetime.now(UTC),
                }
                await connection.execute(FINISH_IDEMPOTENCY_ROW, finished | {"row_id": row_id})
            await reserve_stock(connection, reserve)  # last: the hot row's lock is held until COMMIT
        return answer

    return app


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


async def open_shop(engine: AsyncEngine, product_count: int) -> tuple[str, list[str]]:
    """A tenant, a test-mode publishable key and `product_count` products with 10^9 units each:
    (the key's text, the product ids)."""
    now, tenant_id = datetime.now(UTC), new_id("ten")
    key = f"pk_test_{secrets.token_urlsafe(24)}"
    product_ids = [new_id("prod") for _ in range(product_count)]
    async with engine.begin() as connection:
        await connection.execute(
            insert(tenants).values(
                id=tenant_id, slug=tenant_id, name="Bench", status="active", created_at=now
            )
        )
        await connection.execute(
            insert(api_keys).values(
                id=new_id("key"),
                tenant_id=tenant_id,
                secret_hash=key_hash(key),
                mode="test",
                kind="publishable",
                scopes=["storefront"],
                created_at=now,
            )
        )
        await connection.execute(
            insert(products),
            [
                {
                    "id": product_id,
                    "tenant_id": tenant_id,
                    "livemode": False,
                    "sku": None,
                    "name": f"Bench widget {number}",
                    "price": 2500,
                    "currency": "EUR",
                    "kind": "physical",
                    "fulfillment": {"type": "stock"},
                    "active": True,
                    "created_at": now,
                }
                for number, product_id in enumerate(product_ids)
            ],
        )
        await connection.execute(
            insert(inventory),
            [
                {
                    "product_id": product_id,
                    "tenant_id": tenant_id,
                    "on_hand": 10**9,
                    "reserved": 0,
                    "updated_at": now,
                }
                for product_id in product_ids
            ],
        )
    return key, product_ids
