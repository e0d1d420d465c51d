from __future__ import annotations

from fastapi import APIRouter, Request

from paycore.dependencies import DatabaseDep, RegistryDep, SettingsDep
from paycore.errors import InvalidRequest
from paycore.payments.schemas import WebhookReceivedOut
from paycore.payments.webhooks import receive_webhook

webhook_router = APIRouter(tags=["webhooks"])

# Far above any provider's event, far below what could hurt: refuse bigger bodies unread.
MAX_WEBHOOK_BODY = 1_000_000


@webhook_router.post(
    "/webhooks/{provider}/{tenant_slug}",
    summary="Inbound provider webhook (signature verified, stored, applied once)",
    response_model_exclude_none=True,
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
) -> WebhookReceivedOut:
    """Where a payment provider sends its events for one tenant (give the provider this URL). The
    signature is checked with the tenant's webhook secret (fail closed: a missing secret or bad
    signature is a 400 and nothing is stored); the event is stored once and applied once. Any 2xx
    tells the provider to stop retrying; a 503 asks it to send the event again."""
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BODY:
        raise InvalidRequest("The body is too large.", code="body_too_large")
    return await receive_webhook(
        database,
        registry,
        settings,
        request.app.state.webhook_tenants,
        provider_name=provider,
        tenant_slug=tenant_slug,
        headers=request.headers,
        body=body,
    )
