"""`/v1/platform/…`: the platform operator's API (platform keys only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.db import Database
from paycore.dependencies import DatabaseDep, ReadSessionDep, WriteSessionDep
from paycore.invalidation import CacheKind, InvalidationChannel
from paycore.platform import service
from paycore.platform.dependencies import PlatformDep
from paycore.platform.schemas import (
    PlanIn,
    PlanOut,
    PlatformTenantIn,
    PlatformTenantOut,
    SubscriptionIn,
    SubscriptionOut,
)
from paycore.schemas import DEFAULT_LIMIT, CursorQuery, LimitQuery, ListOut
from paycore.tenancy.models import Plan, TenantStatus
from paycore.tenancy.standing import may_sell

router = APIRouter(prefix="/v1/platform", tags=["platform"])


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        code=plan.code,
        name=plan.name,
        max_products=plan.max_products,
        max_orders_per_month=plan.max_orders_per_month,
        features=list(plan.features),
        max_servers=plan.max_servers,
        max_server_memory_mb=plan.max_server_memory_mb,
        created=plan.created_at,
    )


def tenant_out(view: service.TenantView) -> PlatformTenantOut:
    subscription = view.subscription
    return PlatformTenantOut(
        id=view.tenant.id,
        slug=view.tenant.slug,
        name=view.tenant.name,
        status=view.tenant.status,
        may_sell=may_sell(view.tenant.status, subscription.status if subscription else None),
        subscription=SubscriptionOut(
            plan=view.plan.code if view.plan else None,
            status=subscription.status if subscription else None,
            current_period_end=subscription.current_period_end if subscription else None,
        ),
        created=view.tenant.created_at,
    )


def _invalidations(request: Request) -> InvalidationChannel:
    channel: InvalidationChannel = request.app.state.invalidations
    return channel


@router.post("/tenants", status_code=status.HTTP_201_CREATED, summary="Create a tenant (merchant)")
async def create_tenant(
    body: PlatformTenantIn, actor: PlatformDep, session: WriteSessionDep
) -> PlatformTenantOut:
    """A new merchant, on a plan. Its API keys are made with the `paycore keys create` command. Needs
    the platform operator's key (`plat_…`)."""
    view = await service.create_tenant_on_plan(
        session, slug=body.slug, name=body.name, plan_code=body.plan, actor=actor
    )
    return tenant_out(view)


@router.get("/tenants", summary="Every tenant, newest first")
async def list_tenants(
    _actor: PlatformDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[PlatformTenantOut]:
    """Every tenant with its subscription, newest first; page with `limit` and `cursor`. Needs the
    platform operator's key (`plat_…`)."""
    views, page = await service.list_tenants(session, limit=limit, cursor=cursor)
    return ListOut(
        data=[tenant_out(view) for view in views], has_more=page.has_more, next_cursor=page.next_cursor
    )


@router.get("/tenants/{tenant_id}", summary="One tenant with its subscription")
async def read_tenant(tenant_id: str, _actor: PlatformDep, session: ReadSessionDep) -> PlatformTenantOut:
    """One tenant with its plan and subscription. Needs the platform operator's key (`plat_…`)."""
    return tenant_out(await service.tenant_view(session, tenant_id))


async def _change_standing(
    request: Request,
    database: Database,
    tenant_id: str,
    change: Callable[[AsyncSession], Awaitable[service.TenantView]],
) -> PlatformTenantOut:
    """Make a change to a tenant's standing, then tell every process to forget the cached
    standing — after the commit, so no request can cache the old standing again in between."""
    async with database.session(write=True) as session:
        out = tenant_out(await change(session))
    await _invalidations(request).publish(CacheKind.TENANT_STANDING, tenant_id)
    return out


@router.post("/tenants/{tenant_id}/suspend", summary="Stop a tenant's selling (its payments still settle)")
async def suspend_tenant(
    tenant_id: str, request: Request, actor: PlatformDep, database: DatabaseDep
) -> PlatformTenantOut:
    """The tenant can no longer sell (its API answers 403 `tenant_suspended`); payments already under
    way still settle and refunds still work. Needs the platform operator's key (`plat_…`)."""
    return await _change_standing(
        request,
        database,
        tenant_id,
        lambda session: service.set_tenant_status(
            session, tenant_id=tenant_id, status=TenantStatus.SUSPENDED, actor=actor
        ),
    )


@router.post("/tenants/{tenant_id}/reactivate", summary="Let a suspended tenant sell again")
async def reactivate_tenant(
    tenant_id: str, request: Request, actor: PlatformDep, database: DatabaseDep
) -> PlatformTenantOut:
    """Lets a suspended tenant sell again, at once in every process. Needs the platform operator's key
    (`plat_…`)."""
    return await _change_standing(
        request,
        database,
        tenant_id,
        lambda session: service.set_tenant_status(
            session, tenant_id=tenant_id, status=TenantStatus.ACTIVE, actor=actor
        ),
    )


@router.put("/tenants/{tenant_id}/subscription", summary="Set a tenant's plan and subscription status")
async def put_subscription(
    tenant_id: str, body: SubscriptionIn, request: Request, actor: PlatformDep, database: DatabaseDep
) -> PlatformTenantOut:
    """Sets the tenant's plan and subscription status; a status other than active or trialing stops its
    selling. Needs the platform operator's key (`plat_…`)."""
    return await _change_standing(
        request,
        database,
        tenant_id,
        lambda session: service.set_subscription(
            session,
            tenant_id=tenant_id,
            plan_code=body.plan,
            status=body.status,
            current_period_end=body.current_period_end,
            actor=actor,
        ),
    )


@router.post("/plans", status_code=status.HTTP_201_CREATED, summary="Create a plan")
async def create_plan(body: PlanIn, actor: PlatformDep, session: WriteSessionDep) -> PlanOut:
    """A plan: product and monthly order limits and features, which tenants are put on. Needs the
    platform operator's key (`plat_…`)."""
    # A new plan has no subscribers yet: no cached standing can be stale.
    plan = await service.create_plan(
        session,
        code=body.code,
        name=body.name,
        max_products=body.max_products,
        max_orders_per_month=body.max_orders_per_month,
        features=body.features,
        max_servers=body.max_servers,
        max_server_memory_mb=body.max_server_memory_mb,
        actor=actor,
    )
    return plan_out(plan)


@router.get("/plans", summary="Every plan")
async def list_plans(_actor: PlatformDep, session: ReadSessionDep) -> ListOut[PlanOut]:
    """Every plan. Needs the platform operator's key (`plat_…`)."""
    plans = await service.list_plans(session)
    return ListOut(data=[plan_out(plan) for plan in plans], has_more=False, next_cursor=None)
