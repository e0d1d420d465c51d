"""`POST /webhooks/{provider}/{tenant_slug}`: verify → inbox → apply.

Fail closed: an unknown provider or tenant, a missing or wrong signature, a body that is not the
provider's event — each is refused with a 4xx, counted, and changes nothing. A verified event is
stored in the inbox and applied in one transaction, the application inside a savepoint, so the
stored event commits even when applying it fails; only a failure to store it answers 503 (so the
provider sends it again). A failure to apply it still answers 200: the inbox retries it. A
delivery of an event already stored is answered from one read, before any write transaction, and
copies arriving while it is being stored wait for that in this process, holding no connection.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.exc import SQLAlchemyError

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.errors import InvalidRequest, NotFound, ServiceUnavailable
from paycore.logging import get_logger
from paycore.ops.metrics import WEBHOOK_EVENTS, WEBHOOK_REJECTIONS
from paycore.payments.capture import capture_authorized
from paycore.payments.in_flight import InFlight
from paycore.payments.inbox import Received, already_stored, store_and_apply_event
from paycore.payments.providers.base import (
    NeutralKind,
    ProviderAccount,
    ProviderNotConfigured,
    ProviderRequestRefused,
    ProviderUnavailable,
    WebhookRejected,
)
from paycore.payments.providers.registry import ProviderRegistry
from paycore.payments.schemas import WebhookReceivedOut
from paycore.payments.webhook_tenants import WebhookTenants

log = get_logger(__name__)

# Copies of one event arriving together in this process: one stores it, the rest wait without a
# database connection (see `in_flight`).
_IN_FLIGHT = InFlight()


async def receive_webhook(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    tenants: WebhookTenants,
    *,
    provider_name: str,
    tenant_slug: str,
    headers: Mapping[str, str],
    body: bytes,
) -> WebhookReceivedOut:
    try:
        provider = registry.for_webhook(provider_name)
    except NotFound:
        WEBHOOK_REJECTIONS.labels(provider="unknown", reason="unknown_provider").inc()
        raise
    tenant = await tenants.by_slug(database, tenant_slug)
    if tenant is None:
        WEBHOOK_REJECTIONS.labels(provider=provider.name, reason="unknown_tenant").inc()
        raise NotFound(f"No tenant '{tenant_slug}'.", code="tenant_not_found")

    # The mode is only known once the event is verified: the adapter tries both modes' secrets.
    account = ProviderAccount(tenant_id=tenant.id, tenant_slug=tenant.slug, livemode=False)
    try:
        verified = await provider.verify_webhook(account, headers, body, utcnow())
        payload = verified.payload
        event = provider.to_neutral(payload, livemode=verified.livemode)
    except WebhookRejected as exc:
        WEBHOOK_REJECTIONS.labels(provider=provider.name, reason=exc.reason).inc()
        log.warning("webhook_rejected", provider=provider.name, tenant=tenant.slug, reason=exc.reason)
        raise InvalidRequest(f"Webhook refused: {exc}.", code="webhook_signature_invalid") from None
    except (ProviderUnavailable, TimeoutError, ProviderRequestRefused, ProviderNotConfigured) as exc:
        # Verification needed the provider (PayPal's online check, Midtrans' status API) and could
        # not get an answer — down, or our key refused: not refused, not stored; it is sent again.
        WEBHOOK_REJECTIONS.labels(provider=provider.name, reason="verification_unavailable").inc()
        log.warning(
            "webhook_verification_unavailable", provider=provider.name, tenant=tenant.slug, error=str(exc)
        )
        raise ServiceUnavailable(
            "The webhook could not be verified now; send it again.", code="webhook_verification_unavailable"
        ) from None
    if event.livemode != verified.livemode:
        # Signed by one account, claiming the other world (a Stripe event's own `livemode`).
        WEBHOOK_REJECTIONS.labels(provider=provider.name, reason="mode_mismatch").inc()
        raise InvalidRequest(
            "Webhook refused: its mode does not match the key that signed it.",
            code="webhook_signature_invalid",
        )

    async def store() -> Received:
        if await already_stored(
            database, tenant_id=tenant.id, provider=provider.name, provider_event_id=event.provider_event_id
        ):
            return Received(event_id=None)
        return await store_and_apply_event(
            database, settings, tenant_id=tenant.id, provider=provider.name, event=event, payload=payload
        )

    try:
        received = await _IN_FLIGHT.first_or_wait(
            (id(database), tenant.id, provider.name, event.provider_event_id), store, Received(event_id=None)
        )
    except SQLAlchemyError:
        log.exception(
            "webhook_store_failed", provider=provider.name, provider_event_id=event.provider_event_id
        )
        raise ServiceUnavailable(
            "The event could not be stored; send it again.", code="webhook_store_failed"
        ) from None
    if received.event_id is None:
        WEBHOOK_EVENTS.labels(provider=provider.name, outcome="duplicate").inc()
        return WebhookReceivedOut(duplicate=True)
    result = received.result
    if event.kind is NeutralKind.PAYMENT_AUTHORIZED:
        verified_account = ProviderAccount(
            tenant_id=tenant.id, tenant_slug=tenant.slug, livemode=verified.livemode
        )
        await capture_authorized(
            database, registry, settings, account=verified_account, provider_name=provider.name, event=event
        )
    return WebhookReceivedOut(
        duplicate=False, event=received.event_id, result=result.value if result else "queued"
    )
