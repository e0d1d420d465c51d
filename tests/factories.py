"""Plain async factories: keyword-only defaults, return the created object."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor
from paycore.auth.models import KeyKind, KeyMode
from paycore.auth.service import CreatedKey, create_api_key
from paycore.ids import random_base62
from paycore.tenancy.models import Tenant
from paycore.tenancy.service import create_tenant

TEST_ACTOR = Actor(name="test")


async def make_tenant(session: AsyncSession, *, slug: str | None = None, name: str = "Acme Shop") -> Tenant:
    return await create_tenant(
        session, slug=slug or f"shop-{random_base62(8).lower()}", name=name, actor=TEST_ACTOR
    )


async def make_api_key(
    session: AsyncSession,
    *,
    tenant: Tenant,
    kind: KeyKind = KeyKind.SECRET,
    mode: KeyMode = KeyMode.TEST,
    scopes: Sequence[str] = (),
    expires_at: datetime | None = None,
) -> CreatedKey:
    return await create_api_key(
        session, tenant=tenant, kind=kind, mode=mode, scopes=scopes, expires_at=expires_at, actor=TEST_ACTOR
    )
