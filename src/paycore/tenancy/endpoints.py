from __future__ import annotations

from fastapi import APIRouter

from paycore.auth.dependencies import ReadKeyDep
from paycore.dependencies import ReadSessionDep
from paycore.tenancy.schemas import TenantOut
from paycore.tenancy.service import get_tenant

router = APIRouter(prefix="/v1", tags=["tenant"])


@router.get("/tenant", summary="The tenant the API key belongs to")
async def read_own_tenant(context: ReadKeyDep, session: ReadSessionDep) -> TenantOut:
    """The tenant (merchant) the API key belongs to, with the key's mode. Needs a secret key with the
    `read` scope."""
    tenant = await get_tenant(session, context.tenant_id)
    return TenantOut(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        status=tenant.status,
        livemode=context.livemode,
        created=tenant.created_at,
    )
