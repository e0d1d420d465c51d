from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from paycore.dependencies import DatabaseDep, RegistryDep, SettingsDep
from paycore.errors import InvalidRequest
from paycore.payments.webhooks import receive_webhook

webhook_router = APIRouter(tags=["webhooks"])

# Far above any provider's event, far below what could hurt: refuse bigger bodies unread.
MAX_WEBHOOK_BODY = 1_000_000


@webhook_router.post(
    "/webhooks/{provider}/{tenant_slug}",
    summary="Inbound provider webhook (signature verified, stored, applied once)",
    responses={
        400: {"description": "Signature or body refused"},
        404: {"description": "Unknown provider or tenant"},
    },
)
async def provider_webhook(
    provider: str,
    tenant_slug: str,
    request: Request,
    database: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BODY:
        raise InvalidRequest("The body is too large.", code="body_too_large")
    receipt = await receive_webhook(
        database,
        registry,
        settings,
        provider_name=provider,
        tenant_slug=tenant_slug,
        headers=request.headers,
        body=body,
    )
    return receipt.body
