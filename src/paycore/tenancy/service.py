"""Creating and finding tenants. Services take a session and never commit."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.errors import Conflict, NotFound, ValidationFailed
from paycore.tenancy.models import Plan, Subscription, SubscriptionStatus, Tenant

DEFAULT_PLAN_CODE = "default"

_SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")


def slug_problem(slug: str) -> str | None:
    """Why `slug` cannot name a tenant (it appears in webhook URLs), or `None`."""
    if not _SLUG_PATTERN.match(slug):
        return (
            "must be 3 to 63 characters of lower-case letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    if "--" in slug:
        return "may not contain two hyphens in a row"
    return None


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"No tenant with slug '{slug}'.", code="tenant_not_found", param="slug")
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    return tenant


async def get_or_create_default_plan(session: AsyncSession) -> Plan:
    """The unlimited plan a tenant starts on until a platform operator assigns another."""
    plan = await session.scalar(select(Plan).where(Plan.code == DEFAULT_PLAN_CODE))
    if plan is not None:
        return plan
    plan = Plan(code=DEFAULT_PLAN_CODE, name="Default (unlimited)", features=[])
    try:
        async with session.begin_nested():
            session.add(plan)
    except IntegrityError:
        # Another transaction created it first; theirs is as good as ours.
        plan = await session.scalar(select(Plan).where(Plan.code == DEFAULT_PLAN_CODE))
        assert plan is not None
    return plan


async def create_tenant(session: AsyncSession, *, slug: str, name: str, actor: Actor) -> Tenant:
    """A tenant with an active subscription to the default plan."""
    problem = slug_problem(slug)
    if problem is not None:
        raise ValidationFailed(f"slug {problem}.", param="slug")
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("name must be 1 to 200 characters.", param="name")
    plan = await get_or_create_default_plan(session)
    tenant = Tenant(slug=slug, name=name)
    try:
        async with session.begin_nested():
            session.add(tenant)
    except IntegrityError:
        raise Conflict(
            f"A tenant with slug '{slug}' already exists.",
            code="tenant_exists",
            param="slug",
        ) from None
    session.add(Subscription(tenant_id=tenant.id, plan_id=plan.id, status=SubscriptionStatus.ACTIVE))
    record_audit(
        session,
        actor=actor,
        action="tenant.created",
        entity_type="tenant",
        entity_id=tenant.id,
        tenant_id=tenant.id,
        after={"slug": slug, "name": name, "plan": plan.code},
    )
    await session.flush()
    return tenant
