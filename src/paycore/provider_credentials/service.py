"""Setting, reading and resealing a tenant's provider credentials.

Secrets are sealed before they reach a session and opened only by `CredentialStore.get`, for the
length of one provider call; what is stored in the clear (`hints`) is what may be shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.errors import InvalidRequest, NotFound, ValidationFailed
from paycore.invalidation.cache import TrustedCache
from paycore.invalidation.channel import CacheKind, InvalidationChannel
from paycore.logging import get_logger
from paycore.payments.providers.base import ProviderCredentials
from paycore.provider_credentials.models import ProviderCredential
from paycore.sealing import SecretsKeyMissing, secrets_box
from paycore.secrets_box import SealError, SecretsBox

log = get_logger(__name__)


def _context(tenant_id: str, provider: str, livemode: bool) -> bytes:
    return f"provider-credentials\x1f{tenant_id}\x1f{provider}\x1f{'live' if livemode else 'test'}".encode()


def mask(value: str) -> str:
    """`sk_test_…4242`: the key's kind (its prefix up to the last `_` in the first 8 characters)
    and its last four characters — only for a value long enough that this leaves most of it
    unseen; a shorter one shows its last four at most, a short one nothing."""
    if len(value) < 16:
        return "…"
    head = value[:8]
    prefix = head[: head.rfind("_") + 1] if "_" in head and len(value) >= 24 else ""
    return f"{prefix}…{value[-4:]}"


@dataclass(frozen=True, slots=True)
class CredentialUpdate:
    credentials: Mapping[str, Any] | None
    webhook_secret: str | None
    previous_webhook_secret_valid_hours: int


def _validated(model: type[BaseModel], raw: Mapping[str, Any], *, livemode: bool) -> dict[str, str]:
    try:
        parsed = model.model_validate(dict(raw), context={"livemode": livemode})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "credentials"
        # The message names the field and the rule, never the value given.
        raise ValidationFailed(f"credentials.{field}: {first['msg']}", param=f"credentials.{field}") from None
    values: dict[str, str] = {}
    for name, value in parsed:
        if value is None:
            continue
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if not text.isprintable() or len(text) > 2000:
            # Keys are printable text; a NUL or a control character is a mistake (and PostgreSQL
            # refuses a NUL inside JSON: a 500).
            raise ValidationFailed(f"credentials.{name}: must be printable text", param=f"credentials.{name}")
        values[name] = text
    return values


def _hints(values: Mapping[str, str], secret_fields: frozenset[str]) -> dict[str, str]:
    return {name: mask(value) if name in secret_fields else value for name, value in values.items()}


def _account(*, tenant_id: str, provider: str, livemode: bool) -> Select[ProviderCredential]:
    """The one row of a tenant's account at a provider in a mode."""
    return select(ProviderCredential).where(
        ProviderCredential.tenant_id == tenant_id,
        ProviderCredential.provider == provider,
        ProviderCredential.livemode == livemode,
    )


async def get_row(
    session: AsyncSession, *, tenant_id: str, provider: str, livemode: bool
) -> ProviderCredential:
    row = await session.scalar(_account(tenant_id=tenant_id, provider=provider, livemode=livemode))
    if row is None:
        mode = "live" if livemode else "test"
        raise NotFound(f"No {provider} credentials in {mode} mode.", param="provider")
    return row


async def set_credentials(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: str,
    provider: str,
    livemode: bool,
    model: type[BaseModel],
    secret_fields: frozenset[str],
    update: CredentialUpdate,
    actor: Actor,
    now: datetime,
) -> ProviderCredential:
    """Create or replace; omitted parts keep their stored value. A new webhook secret may leave
    the old one verifying for `previous_webhook_secret_valid_hours` (a rotation window)."""
    box = secrets_box(settings)
    context = _context(tenant_id, provider, livemode)
    row = await session.scalar(
        _account(tenant_id=tenant_id, provider=provider, livemode=livemode).with_for_update()
    )
    stored: dict[str, Any] = {"values": {}, "webhook_secret": None, "previous_webhook_secret": None}
    if row is not None:
        stored = _open(box, row, context)
    if update.credentials is None and row is None:
        raise InvalidRequest(f"credentials are required to set up {provider}.", param="credentials")
    values = (
        _validated(model, update.credentials, livemode=livemode)
        if update.credentials is not None
        else stored["values"]
    )
    previous_expires = row.previous_webhook_secret_expires_at if row is not None else None
    if update.webhook_secret is not None and update.webhook_secret != stored["webhook_secret"]:
        keep_old = stored["webhook_secret"] and update.previous_webhook_secret_valid_hours > 0
        stored["previous_webhook_secret"] = stored["webhook_secret"] if keep_old else None
        previous_expires = (
            now + timedelta(hours=update.previous_webhook_secret_valid_hours) if keep_old else None
        )
        stored["webhook_secret"] = update.webhook_secret
    stored["values"] = values
    if update.webhook_secret is not None:
        await _refuse_secret_shared_across_modes(
            session, box, tenant_id, provider, livemode, update.webhook_secret
        )
    sealed = box.seal(json.dumps(stored, separators=(",", ":")).encode(), context=context)
    hints = _hints(values, secret_fields)
    if stored["webhook_secret"]:
        hints["webhook_secret"] = mask(stored["webhook_secret"])
    before = dict(row.hints) if row is not None else None
    if row is None:
        row = ProviderCredential(tenant_id=tenant_id, provider=provider, livemode=livemode, created_at=now)
        session.add(row)
    row.sealed = sealed
    row.secrets_key_id = box.primary_kid
    row.hints = hints
    row.has_webhook_secret = bool(stored["webhook_secret"])
    row.previous_webhook_secret_expires_at = previous_expires
    row.updated_at = now
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="provider_credentials.set",
        entity_type="provider_credentials",
        entity_id=row.id,
        tenant_id=tenant_id,
        before=before,
        after={"provider": provider, "livemode": livemode, **hints},  # hints only: never a secret
    )
    return row


async def _refuse_secret_shared_across_modes(
    session: AsyncSession, box: SecretsBox, tenant_id: str, provider: str, livemode: bool, secret: str
) -> None:
    """The secret that verifies a webhook decides its mode: one secret in both modes would let a
    test event pass for a live one (providers where the merchant chooses it: Razorpay)."""
    other = await session.scalar(_account(tenant_id=tenant_id, provider=provider, livemode=not livemode))
    if other is None:
        return
    opened = _open(box, other, _context(tenant_id, provider, not livemode))
    if secret in (opened.get("webhook_secret"), opened.get("previous_webhook_secret")):
        raise ValidationFailed(
            "webhook_secret: the test and live webhook secrets must differ (the one that verifies a "
            "webhook decides its mode).",
            param="webhook_secret",
        )


async def delete_credentials(
    session: AsyncSession, *, tenant_id: str, provider: str, livemode: bool, actor: Actor
) -> ProviderCredential:
    row = await get_row(session, tenant_id=tenant_id, provider=provider, livemode=livemode)
    record_audit(
        session,
        actor=actor,
        action="provider_credentials.deleted",
        entity_type="provider_credentials",
        entity_id=row.id,
        tenant_id=tenant_id,
        before={"provider": provider, "livemode": livemode, **row.hints},
    )
    await session.delete(row)
    return row


async def list_credentials(
    session: AsyncSession, *, tenant_id: str, livemode: bool
) -> list[ProviderCredential]:
    return list(
        await session.scalars(
            select(ProviderCredential)
            .where(ProviderCredential.tenant_id == tenant_id, ProviderCredential.livemode == livemode)
            .order_by(ProviderCredential.provider)
        )
    )


def _open(box: SecretsBox, row: ProviderCredential, context: bytes) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(box.open(row.sealed, context=context))
    return stored


def credentials_of(box: SecretsBox, row: ProviderCredential, now: datetime) -> ProviderCredentials:
    return _OpenedAccount.of(box, row).credentials(now)


@dataclass(frozen=True, slots=True)
class _OpenedAccount:
    """A row's opened secrets, kept by `CredentialStore`'s cache; `stored` None: no row."""

    tenant_id: str
    provider: str
    livemode: bool
    stored: dict[str, Any] | None
    previous_expires_at: datetime | None

    @classmethod
    def of(cls, box: SecretsBox, row: ProviderCredential) -> _OpenedAccount:
        stored = _open(box, row, _context(row.tenant_id, row.provider, row.livemode))
        return cls(row.tenant_id, row.provider, row.livemode, stored, row.previous_webhook_secret_expires_at)

    def credentials(self, now: datetime) -> ProviderCredentials:
        """The secrets as of `now`: the previous webhook secret only inside its rotation window."""
        stored = self.stored or {}
        secrets = [stored["webhook_secret"]] if stored.get("webhook_secret") else []
        expires = self.previous_expires_at
        if stored.get("previous_webhook_secret") and expires is not None and expires > now:
            secrets.append(stored["previous_webhook_secret"])
        return ProviderCredentials(
            provider=self.provider,
            livemode=self.livemode,
            values=dict(stored.get("values", {})),
            webhook_secrets=tuple(secrets),
        )


async def reseal_all(session: AsyncSession, settings: Settings) -> int:
    """Rewrite every row not sealed under the keyring's first key; returns how many."""
    box = secrets_box(settings)
    count = 0
    rows = await session.scalars(
        select(ProviderCredential)
        .where(ProviderCredential.secrets_key_id != box.primary_kid)
        .with_for_update()
    )
    for row in rows:
        context = _context(row.tenant_id, row.provider, row.livemode)
        row.sealed = box.seal(box.open(row.sealed, context=context), context=context)
        row.secrets_key_id = box.primary_kid
        count += 1
    await session.flush()
    return count


class CredentialStore:
    """The `CredentialSource` adapters read from. With a cache (the API's processes), an account's
    opened secrets are kept per process, dropped when the tenant's credentials change anywhere
    (`CacheKind.PROVIDER_CREDENTIALS`, published after the commit) and trusted only as long as
    `TrustedCache` allows; without one (the worker, the CLI), one short read per provider call."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        cache: TrustedCache[tuple[str, str, bool], _OpenedAccount] | None = None,
    ) -> None:
        self._database = database
        self._settings = settings
        self._cache = cache

    async def get(self, tenant_id: str, provider: str, *, livemode: bool) -> ProviderCredentials | None:
        account = (tenant_id, provider, livemode)
        opened = self._cache.get(account) if self._cache is not None else None
        if opened is None:
            generation = self._cache.generation if self._cache is not None else 0
            opened = await self._load(tenant_id, provider, livemode)
            if opened is None:
                return None
            if self._cache is not None:
                self._cache.put(account, opened, generation=generation)
        return opened.credentials(utcnow()) if opened.stored is not None else None

    async def _load(self, tenant_id: str, provider: str, livemode: bool) -> _OpenedAccount | None:
        """The account opened (`stored` None when there is no row); None when it cannot be opened."""
        async with self._database.session(write=False) as session:
            row = await session.scalar(_account(tenant_id=tenant_id, provider=provider, livemode=livemode))
        if row is None:
            return _OpenedAccount(tenant_id, provider, livemode, None, None)
        try:
            return _OpenedAccount.of(secrets_box(self._settings), row)
        except (SealError, SecretsKeyMissing) as exc:
            # Fail closed: credentials that cannot be opened are no credentials. Loudly.
            log.error("provider_credentials_unreadable", provider=provider, tenant=tenant_id, error=str(exc))
            return None


CACHE_SECONDS = 300.0
CACHE_ENTRIES = 10_000


def credential_cache(
    settings: Settings, channel: InvalidationChannel
) -> TrustedCache[tuple[str, str, bool], _OpenedAccount]:
    """The API process's cache of opened provider secrets, dropped per tenant on a change."""
    cache: TrustedCache[tuple[str, str, bool], _OpenedAccount] = TrustedCache(
        channel,
        seconds=CACHE_SECONDS,
        unconfirmed_seconds=settings.cache_unconfirmed_seconds,
        max_entries=CACHE_ENTRIES,
    )

    def drop(tenant_id: str | None) -> None:
        if tenant_id is None:
            cache.drop()
        else:
            cache.drop_matching(lambda opened: opened.tenant_id == tenant_id)

    channel.subscribe(CacheKind.PROVIDER_CREDENTIALS, drop)
    return cache


async def webhooks_without_secret(
    database: Database, required_by: frozenset[str]
) -> list[ProviderCredential]:
    """Credentials of providers that sign webhooks with a secret of their own, set without one:
    every webhook to them is refused (fail closed), which an operator should hear about."""
    async with database.session(write=False) as session:
        return list(
            await session.scalars(
                select(ProviderCredential).where(
                    ProviderCredential.has_webhook_secret.is_(False),
                    ProviderCredential.provider.in_(sorted(required_by)),
                )
            )
        )
