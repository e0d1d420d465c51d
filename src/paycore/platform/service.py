"""The platform operator's work: its keys, tenants, plans and subscriptions. Services take a session
and never commit; every change writes its audit row."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.auth.keys import key_matches
from paycore.clock import utcnow
from paycore.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed
from paycore.pagination import Page, paginate
from paycore.platform.keys import generate_platform_key, parse_platform_key
from paycore.platform.models import PlatformKey
from paycore.tenancy.models import Plan, Subscription, SubscriptionStatus, Tenant, TenantStatus
from paycore.tenancy.service import create_tenant

_PLAN_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class CreatedPlatformKey:
    key: PlatformKey
    plaintext: str


@dataclass(frozen=True, slots=True)
class TenantView:
    tenant: Tenant
    subscription: Subscription | None
    plan: Plan | None


async def create_platform_key(session: AsyncSession, *, name: str | None, actor: Actor) -> CreatedPlatformKey:
    generated = generate_platform_key()
    key = PlatformKey(
        name=name, prefix=generated.prefix, secret_hash=generated.secret_hash, last4=generated.last4
    )
    session.add(key)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="platform_key.created",
        entity_type="platform_key",
        entity_id=key.id,
        tenant_id=None,
        after={"prefix": key.prefix, "name": name},
    )
    return CreatedPlatformKey(key=key, plaintext=generated.plaintext)


async def authenticate_platform_key(session: AsyncSession, presented: str) -> PlatformKey:
    prefix = parse_platform_key(presented)
    if prefix is None:
        raise AuthenticationFailed("Invalid platform key provided.")
    key = await session.scalar(select(PlatformKey).where(PlatformKey.prefix == prefix))
    if key is None or not key_matches(presented, key.secret_hash):
        raise AuthenticationFailed("Invalid platform key provided.")
    if key.revoked_at is not None:
        raise AuthenticationFailed("This platform key has been revoked.", code="api_key_revoked")
    return key


async def get_plan_by_code(session: AsyncSession, code: str) -> Plan:
    plan = await session.scalar(select(Plan).where(Plan.code == code))
    if plan is None:
        raise NotFound(f"No plan '{code}'.", code="plan_not_found", param="plan")
    return plan


async def create_plan(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    max_products: int | None,
    max_orders_per_month: int | None,
    features: list[str],
    actor: Actor,
    max_servers: int | None = None,
    max_server_memory_mb: int | None = None,
) -> Plan:
    if not _PLAN_CODE.match(code):
        raise ValidationFailed("code must be lower-case letters, digits, - or _.", param="code")
    plan = Plan(
        code=code,
        name=name,
        max_products=max_products,
        max_orders_per_month=max_orders_per_month,
        features=sorted(set(features)),
        max_servers=max_servers,
        max_server_memory_mb=max_server_memory_mb,
    )
    try:
        async with session.begin_nested():
            session.add(plan)
    except IntegrityError:
        raise Conflict(f"A plan '{code}' already exists.", code="plan_exists", param="code") from None
    record_audit(
        session,
        actor=actor,
        action="plan.created",
        entity_type="plan",
        entity_id=plan.id,
        tenant_id=None,
        after={
            "code": code,
            "max_products": max_products,
            "max_orders_per_month": max_orders_per_month,
            "features": plan.features,
            "max_servers": max_servers,
            "max_server_memory_mb": max_server_memory_mb,
        },
    )
    return plan


async def list_plans(session: AsyncSession) -> list[Plan]:
    return list(await session.scalars(select(Plan).order_by(Plan.code)))


async def tenant_view(session: AsyncSession, tenant_id: str) -> TenantView:
    row = (
        await session.execute(
            select(Tenant, Subscription, Plan)
            .outerjoin(Subscription, Subscription.tenant_id == Tenant.id)
            .outerjoin(Plan, Plan.id == Subscription.plan_id)
            .where(Tenant.id == tenant_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such tenant.", code="tenant_not_found", param="id")
    return TenantView(tenant=row[0], subscription=row[1], plan=row[2])


async def list_tenants(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[TenantView], Page[Tenant]]:
    page: Page[Tenant] = await paginate(
        session, select(Tenant), created_at=Tenant.created_at, id_column=Tenant.id, limit=limit, cursor=cursor
    )
    return [await tenant_view(session, tenant.id) for tenant in page.items], page


async def create_tenant_on_plan(
    session: AsyncSession, *, slug: str, name: str, plan_code: str | None, actor: Actor
) -> TenantView:
    tenant = await create_tenant(session, slug=slug, name=name, actor=actor)
    if plan_code is not None:
        await set_subscription(
            session,
            tenant_id=tenant.id,
            plan_code=plan_code,
            status=SubscriptionStatus.ACTIVE,
            current_period_end=None,
            actor=actor,
        )
    return await tenant_view(session, tenant.id)


async def set_tenant_status(
    session: AsyncSession, *, tenant_id: str, status: TenantStatus, actor: Actor
) -> TenantView:
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found", param="id")
    before = tenant.status
    tenant.status = status
    tenant.updated_at = utcnow()
    record_audit(
        session,
        actor=actor,
        action=f"tenant.{'suspended' if status is TenantStatus.SUSPENDED else 'reactivated'}",
        entity_type="tenant",
        entity_id=tenant.id,
        tenant_id=tenant.id,
        before={"status": before.value},
        after={"status": status.value},
    )
    await session.flush()
    return await tenant_view(session, tenant_id)


async def set_subscription(
    session: AsyncSession,
    *,
    tenant_id: str,
    plan_code: str,
    status: SubscriptionStatus,
    current_period_end: datetime | None,
    actor: Actor,
) -> TenantView:
    if await session.get(Tenant, tenant_id) is None:
        raise NotFound("No such tenant.", code="tenant_not_found", param="id")
    plan = await get_plan_by_code(session, plan_code)
    subscription = await session.scalar(
        select(Subscription).where(Subscription.tenant_id == tenant_id).with_for_update()
    )
    before = None
    if subscription is None:
        subscription = Subscription(tenant_id=tenant_id, plan_id=plan.id)
        session.add(subscription)
    else:
        before = {"plan_id": subscription.plan_id, "status": subscription.status.value}
    subscription.plan_id = plan.id
    subscription.status = status
    subscription.current_period_end = current_period_end
    subscription.updated_at = utcnow()
    record_audit(
        session,
        actor=actor,
        action="subscription.set",
        entity_type="tenant",
        entity_id=tenant_id,
        tenant_id=tenant_id,
        before=before,
        after={"plan": plan.code, "status": status.value},
    )
    await session.flush()
    return await tenant_view(session, tenant_id)
