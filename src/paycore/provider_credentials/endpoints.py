from __future__ import annotations

from fastapi import APIRouter, Request, status

from paycore.auth.dependencies import ReadKeyDep, WriteKeyDep
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.dependencies import DatabaseDep, ReadSessionDep, RegistryDep, SettingsDep
from paycore.errors import InvalidRequest, NotFound
from paycore.invalidation import CacheKind, InvalidationChannel
from paycore.payments.providers.base import PaymentProvider
from paycore.payments.providers.registry import ProviderRegistry
from paycore.provider_credentials import service
from paycore.provider_credentials.models import ProviderCredential
from paycore.provider_credentials.schemas import ProviderCredentialsIn, ProviderCredentialsOut
from paycore.schemas import ListOut

router = APIRouter(prefix="/v1/providers", tags=["providers"])


def configurable(registry: ProviderRegistry, name: str) -> PaymentProvider:
    if name not in registry.names:
        raise NotFound(f"No provider '{name}'.", code="unknown_provider", param="provider")
    provider = registry.get(name)
    if provider.credentials_model is None:
        raise InvalidRequest(f"The {name} provider has nothing to set up.", param="provider")
    return provider


def credentials_out(row: ProviderCredential, settings: Settings, tenant_slug: str) -> ProviderCredentialsOut:
    hints = dict(row.hints)
    webhook_secret = hints.pop("webhook_secret", None)
    return ProviderCredentialsOut(
        provider=row.provider,
        livemode=row.livemode,
        credentials=hints,
        webhook_secret=webhook_secret,
        previous_webhook_secret_expires_at=row.previous_webhook_secret_expires_at,
        webhook_url=f"{settings.public_url}/webhooks/{row.provider}/{tenant_slug}",
        created=row.created_at,
        updated=row.updated_at,
    )


@router.put("/{provider}", summary="Set this mode's credentials for a provider (sealed at rest)")
async def put_provider_credentials(
    provider: str,
    body: ProviderCredentialsIn,
    context: WriteKeyDep,
    request: Request,
    database: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> ProviderCredentialsOut:
    """Stores the tenant's own keys for a payment provider in this key's mode, sealed at rest. Secrets
    are never shown again; the answer has masked hints and the webhook URL to give the provider.
    Needs a secret key with the `write` scope."""
    adapter = configurable(registry, provider)
    if context.livemode and not adapter.supports_livemode:
        raise InvalidRequest(f"The {provider} provider takes test-mode payments only.", param="provider")
    assert adapter.credentials_model is not None
    async with database.session(write=True) as session:
        row = await service.set_credentials(
            session,
            settings,
            tenant_id=context.tenant_id,
            provider=provider,
            livemode=context.livemode,
            model=adapter.credentials_model,
            secret_fields=adapter.secret_fields,
            update=service.CredentialUpdate(
                credentials=body.credentials,
                webhook_secret=body.webhook_secret,
                previous_webhook_secret_valid_hours=body.previous_webhook_secret_valid_hours,
            ),
            actor=context.actor,
            now=utcnow(),
        )
        out = credentials_out(row, settings, context.tenant_slug)
    await _forget_cached(request, context.tenant_id)
    return out


@router.get("", summary="The providers set up in this mode")
async def list_provider_credentials(
    context: ReadKeyDep, session: ReadSessionDep, settings: SettingsDep
) -> ListOut[ProviderCredentialsOut]:
    """The providers this tenant has set up in this mode (secrets masked). Needs a secret key with the
    `read` scope."""
    rows = await service.list_credentials(session, tenant_id=context.tenant_id, livemode=context.livemode)
    return ListOut(
        data=[credentials_out(row, settings, context.tenant_slug) for row in rows],
        has_more=False,
        next_cursor=None,
    )


@router.get("/{provider}", summary="One provider's setup in this mode (secrets masked)")
async def read_provider_credentials(
    provider: str, context: ReadKeyDep, session: ReadSessionDep, settings: SettingsDep
) -> ProviderCredentialsOut:
    """One provider's setup in this mode: masked hints, the webhook URL, whether a webhook secret is
    set. Needs a secret key with the `read` scope."""
    row = await service.get_row(
        session, tenant_id=context.tenant_id, provider=provider, livemode=context.livemode
    )
    return credentials_out(row, settings, context.tenant_slug)


@router.delete(
    "/{provider}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove this mode's credentials"
)
async def delete_provider_credentials(
    provider: str, context: WriteKeyDep, request: Request, database: DatabaseDep
) -> None:
    """Removes this mode's credentials for the provider: its keys are no longer used. Needs a secret
    key with the `write` scope."""
    async with database.session(write=True) as session:
        await service.delete_credentials(
            session,
            tenant_id=context.tenant_id,
            provider=provider,
            livemode=context.livemode,
            actor=context.actor,
        )
    await _forget_cached(request, context.tenant_id)


async def _forget_cached(request: Request, tenant_id: str) -> None:
    """After the commit, so no process can cache the old credentials again in between."""
    channel: InvalidationChannel = request.app.state.invalidations
    await channel.publish(CacheKind.PROVIDER_CREDENTIALS, tenant_id)
