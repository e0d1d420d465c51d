"""A webhook endpoint's signing secrets, sealed at rest (AES-256-GCM, `paycore.sealing`).

`secret` and `previous_secret` are sealed with the endpoint's identity (tenant, mode, id) as
associated data, so a value copied to another endpoint does not open. `secrets_key_id` names the
key they are sealed under; NULL marks a row written before sealing, whose secrets are still plain
text: it is read as such and sealed by `paycore providers reseal` (or when its secret rotates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.merchant_webhooks.models import WebhookEndpoint
from paycore.merchant_webhooks.signing import signing_secrets
from paycore.secrets_box import SecretsBox


@dataclass(frozen=True, slots=True)
class EndpointSecrets:
    current: str
    previous: str | None


def _context(endpoint: WebhookEndpoint) -> bytes:
    mode = "live" if endpoint.livemode else "test"
    return f"webhook-endpoint\x1f{endpoint.tenant_id}\x1f{mode}\x1f{endpoint.id}".encode()


def open_secrets(box: SecretsBox, endpoint: WebhookEndpoint) -> EndpointSecrets:
    """Raises `SealError` for a value that does not open (tampered, or its key is gone)."""
    if endpoint.secrets_key_id is None:  # written before sealing
        return EndpointSecrets(endpoint.secret, endpoint.previous_secret)
    context = _context(endpoint)
    previous = endpoint.previous_secret
    return EndpointSecrets(
        current=box.open(endpoint.secret, context=context).decode(),
        previous=box.open(previous, context=context).decode() if previous else None,
    )


def seal_secrets(box: SecretsBox, endpoint: WebhookEndpoint, secrets: EndpointSecrets) -> None:
    """Store `secrets` sealed under the keyring's first key (the endpoint's id must be set)."""
    context = _context(endpoint)
    endpoint.secret = box.seal(secrets.current.encode(), context=context)
    endpoint.previous_secret = (
        box.seal(secrets.previous.encode(), context=context) if secrets.previous else None
    )
    endpoint.secrets_key_id = box.primary_kid


def secrets_in_use(box: SecretsBox, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one until its
    rotation window closes."""
    secrets = open_secrets(box, endpoint)
    return signing_secrets(secrets.current, secrets.previous, endpoint.previous_secret_expires_at, now)


async def reseal_endpoints(session: AsyncSession, box: SecretsBox) -> int:
    """Seal every endpoint not sealed under the keyring's first key (plain-text rows from before
    sealing included); returns how many. Deleted endpoints too: their secret is still a secret."""
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(
            or_(WebhookEndpoint.secrets_key_id.is_(None), WebhookEndpoint.secrets_key_id != box.primary_kid)
        )
        .with_for_update()
    )
    count = 0
    for endpoint in rows:
        seal_secrets(box, endpoint, open_secrets(box, endpoint))
        count += 1
    await session.flush()
    return count
