"""Managing a merchant's webhook endpoints. Services take a session and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import record_audit
from paycore.auth.context import TenantContext
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.errors import NotFound
from paycore.ids import new_id
from paycore.logging import get_logger
from paycore.merchant_webhooks.models import WebhookAttempt, WebhookEndpoint
from paycore.merchant_webhooks.sealing import EndpointSecrets, open_secrets, seal_secrets
from paycore.merchant_webhooks.signing import new_secret
from paycore.merchant_webhooks.targets import check_new_target
from paycore.pagination import Page, paginate
from paycore.sealing import secrets_box
from paycore.secrets_box import SealError

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NewSecret:
    """An endpoint and its new secret in the clear: shown once to its owner, stored sealed."""

    endpoint: WebhookEndpoint
    secret: str


def _audit(session: AsyncSession, context: TenantContext, endpoint: WebhookEndpoint, action: str) -> None:
    record_audit(
        session,
        actor=context.actor,
        action=f"webhook_endpoint.{action}",
        entity_type="webhook_endpoint",
        entity_id=endpoint.id,
        tenant_id=context.tenant_id,
        after={"url": endpoint.url, "events": endpoint.events, "enabled": endpoint.enabled},
    )


async def create_endpoint(
    session: AsyncSession,
    context: TenantContext,
    settings: Settings,
    *,
    url: str,
    events: list[str],
    description: str | None,
) -> NewSecret:
    await check_new_target(url, settings)
    box = secrets_box(settings)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        url=url,
        events=events,
        description=description,
    )
    seal_secrets(box, endpoint, EndpointSecrets(current=secret, previous=None))
    session.add(endpoint)
    await session.flush()
    _audit(session, context, endpoint, "created")
    return NewSecret(endpoint, secret)


async def get_endpoint(session: AsyncSession, context: TenantContext, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.tenant_id == context.tenant_id,
            WebhookEndpoint.livemode == context.livemode,
            WebhookEndpoint.deleted_at.is_(None),
        )
    )
    if endpoint is None:
        raise NotFound(f"No such webhook endpoint: '{endpoint_id}'.", param="id")
    return endpoint


async def list_endpoints(
    session: AsyncSession, context: TenantContext, *, limit: int, cursor: str | None
) -> Page[WebhookEndpoint]:
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == context.tenant_id,
        WebhookEndpoint.livemode == context.livemode,
        WebhookEndpoint.deleted_at.is_(None),
    )
    return await paginate(
        session,
        statement,
        created_at=WebhookEndpoint.created_at,
        id_column=WebhookEndpoint.id,
        limit=limit,
        cursor=cursor,
    )


async def delete_endpoint(session: AsyncSession, context: TenantContext, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, context, endpoint_id)
    endpoint.deleted_at = utcnow()
    endpoint.enabled = False
    _audit(session, context, endpoint, "deleted")
    return endpoint


async def enable_endpoint(session: AsyncSession, context: TenantContext, endpoint_id: str) -> WebhookEndpoint:
    """Turn a disabled endpoint back on; its run of failures starts from zero."""
    endpoint = await get_endpoint(session, context, endpoint_id)
    endpoint.enabled = True
    endpoint.disabled_reason = None
    endpoint.failing_since = None
    _audit(session, context, endpoint, "enabled")
    return endpoint


async def rotate_secret(
    session: AsyncSession,
    context: TenantContext,
    settings: Settings,
    endpoint_id: str,
    *,
    previous_valid: timedelta,
) -> NewSecret:
    """A new secret; the old one keeps signing alongside it for `previous_valid`."""
    box = secrets_box(settings)
    endpoint = await get_endpoint(session, context, endpoint_id)
    try:
        previous: str | None = open_secrets(box, endpoint).current
    except SealError:
        # Deliveries to it already fail for want of a secret that opens; a fresh one mends that.
        log.error("webhook_endpoint_secret_unreadable", endpoint=endpoint.id, key_id=endpoint.secrets_key_id)
        previous = None
    secret = new_secret()
    seal_secrets(box, endpoint, EndpointSecrets(current=secret, previous=previous))
    endpoint.previous_secret_expires_at = utcnow() + previous_valid
    _audit(session, context, endpoint, "secret_rotated")
    return NewSecret(endpoint, secret)


async def list_attempts(
    session: AsyncSession, context: TenantContext, endpoint_id: str, *, limit: int, cursor: str | None
) -> Page[WebhookAttempt]:
    endpoint = await get_endpoint(session, context, endpoint_id)
    statement = select(WebhookAttempt).where(
        WebhookAttempt.tenant_id == context.tenant_id, WebhookAttempt.endpoint_id == endpoint.id
    )
    return await paginate(
        session,
        statement,
        created_at=WebhookAttempt.at,
        id_column=WebhookAttempt.id,
        limit=limit,
        cursor=cursor,
    )
