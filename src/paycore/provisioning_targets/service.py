"""A tenant's provisioning targets. Services take a session and never commit.

Each target has its own Standard Webhooks secret, made here, shown once (on create and on
rotation) and sealed before it reaches a session; it is opened only by `signing_target`, for the
length of one provisioning call. Every read goes through `_owned`, so a target exists only for
the tenant and mode that made it: another tenant's product cannot name it, and its secret never
signs another tenant's call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import record_audit
from paycore.auth.context import TenantContext
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.errors import NotFound, ValidationFailed
from paycore.ids import new_id
from paycore.merchant_webhooks.signing import new_secret, signing_secrets
from paycore.merchant_webhooks.targets import check_new_target
from paycore.pagination import Page, paginate
from paycore.provisioning_targets.models import ProvisioningTarget
from paycore.sealing import secrets_box
from paycore.secrets_box import SealError

TARGET_PARAM = "fulfillment.config.target"


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A target with its new secret in the clear: for the one answer that shows it."""

    target: ProvisioningTarget
    secret: str


@dataclass(frozen=True, slots=True)
class SigningTarget:
    url: str
    secrets: list[str]  # the current secret first; the previous one while its rotation window lasts


def _context(target: ProvisioningTarget) -> bytes:
    mode = "live" if target.livemode else "test"
    return f"provisioning-target\x1f{target.tenant_id}\x1f{target.id}\x1f{mode}".encode()


def _owned(*, tenant_id: str, livemode: bool) -> Select[ProvisioningTarget]:
    """The one place a query names the tenant and mode of a target."""
    return select(ProvisioningTarget).where(
        ProvisioningTarget.tenant_id == tenant_id,
        ProvisioningTarget.livemode == livemode,
        ProvisioningTarget.deleted_at.is_(None),
    )


def _audit(session: AsyncSession, context: TenantContext, target: ProvisioningTarget, action: str) -> None:
    record_audit(
        session,
        actor=context.actor,
        action=f"provisioning_target.{action}",
        entity_type="provisioning_target",
        entity_id=target.id,
        tenant_id=context.tenant_id,
        after={"url": target.url, "description": target.description},
    )


async def create_target(
    session: AsyncSession, context: TenantContext, settings: Settings, *, url: str, description: str | None
) -> IssuedSecret:
    await check_new_target(url, settings)
    box = secrets_box(settings)
    secret = new_secret()
    target = ProvisioningTarget(
        id=new_id("pvt"),
        tenant_id=context.tenant_id,
        livemode=context.livemode,
        url=url,
        description=description,
        secrets_key_id=box.primary_kid,
    )
    target.sealed_secret = box.seal(secret.encode(), context=_context(target))
    session.add(target)
    await session.flush()
    _audit(session, context, target, "created")
    return IssuedSecret(target, secret)


async def get_target(session: AsyncSession, context: TenantContext, target_id: str) -> ProvisioningTarget:
    target = await session.scalar(
        _owned(tenant_id=context.tenant_id, livemode=context.livemode).where(
            ProvisioningTarget.id == target_id
        )
    )
    if target is None:
        raise NotFound(f"No such provisioning target: '{target_id}'.", param="id")
    return target


async def list_targets(
    session: AsyncSession, context: TenantContext, *, limit: int, cursor: str | None
) -> Page[ProvisioningTarget]:
    return await paginate(
        session,
        _owned(tenant_id=context.tenant_id, livemode=context.livemode),
        created_at=ProvisioningTarget.created_at,
        id_column=ProvisioningTarget.id,
        limit=limit,
        cursor=cursor,
    )


async def delete_target(session: AsyncSession, context: TenantContext, target_id: str) -> ProvisioningTarget:
    """No more calls go to it: a product still naming it fails its provisioning, visibly."""
    target = await get_target(session, context, target_id)
    target.deleted_at = utcnow()
    _audit(session, context, target, "deleted")
    return target


async def rotate_secret(
    session: AsyncSession,
    context: TenantContext,
    settings: Settings,
    target_id: str,
    *,
    previous_valid: timedelta,
) -> IssuedSecret:
    """A new secret; the old one keeps signing alongside it for `previous_valid`."""
    target = await get_target(session, context, target_id)
    box = secrets_box(settings)
    try:
        current: bytes | None = box.open(target.sealed_secret, context=_context(target))
    except SealError:
        current = None  # sealed under a key no longer held: nothing can sign with it anyway
    secret = new_secret()
    target.sealed_previous_secret = None if current is None else box.seal(current, context=_context(target))
    target.previous_secret_expires_at = None if current is None else utcnow() + previous_valid
    target.sealed_secret = box.seal(secret.encode(), context=_context(target))
    target.secrets_key_id = box.primary_kid
    _audit(session, context, target, "secret_rotated")
    return IssuedSecret(target, secret)


async def signing_target(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: str,
    livemode: bool,
    target_id: str,
    now: datetime,
) -> SigningTarget | None:
    """Where a fulfillment of this tenant and mode is sent and the secrets that sign it; None when
    the tenant has no such target (deleted, or never theirs)."""
    target = await session.scalar(
        _owned(tenant_id=tenant_id, livemode=livemode).where(ProvisioningTarget.id == target_id)
    )
    if target is None:
        return None
    box = secrets_box(settings)
    window_open = target.previous_secret_expires_at is not None and target.previous_secret_expires_at > now
    previous = target.sealed_previous_secret if window_open else None  # opened only when it signs
    return SigningTarget(
        url=target.url,
        secrets=signing_secrets(
            box.open(target.sealed_secret, context=_context(target)).decode(),
            box.open(previous, context=_context(target)).decode() if previous else None,
            target.previous_secret_expires_at,
            now,
        ),
    )


async def check_provisioning_spec(
    session: AsyncSession, context: TenantContext, fulfillment: dict[str, Any] | None
) -> None:
    """A product whose paid orders call the HTTP provisioner must name one of the caller's own
    targets; a raw URL is refused (it would have no secret of its own to be signed with)."""
    if fulfillment is None or fulfillment.get("type") != "provision":
        return
    config = fulfillment.get("config") or {}
    if config.get("provisioner", "http") != "http":
        return
    if "url" in config:
        raise ValidationFailed(
            "fulfillment.config.url is not taken: create a provisioning target "
            "(POST /v1/provisioning_targets) and give its id as fulfillment.config.target.",
            param="fulfillment.config.url",
        )
    target_id = config.get("target")
    if not isinstance(target_id, str) or not target_id:
        raise ValidationFailed(
            "An HTTP provisioning needs fulfillment.config.target: the id of one of your "
            "provisioning targets (POST /v1/provisioning_targets).",
            param=TARGET_PARAM,
        )
    target = await session.scalar(
        _owned(tenant_id=context.tenant_id, livemode=context.livemode).where(
            ProvisioningTarget.id == target_id
        )
    )
    if target is None:
        raise NotFound(f"No such provisioning target: '{target_id}'.", param=TARGET_PARAM)


async def reseal_targets(session: AsyncSession, settings: Settings) -> int:
    """Rewrite every target's secrets not sealed under the keyring's first key; returns how many
    targets (`paycore providers reseal` runs this beside the provider credentials)."""
    box = secrets_box(settings)
    count = 0
    rows = await session.scalars(
        select(ProvisioningTarget)
        .where(ProvisioningTarget.secrets_key_id != box.primary_kid)
        .with_for_update()
    )
    for target in rows:
        context = _context(target)
        target.sealed_secret = box.seal(box.open(target.sealed_secret, context=context), context=context)
        if target.sealed_previous_secret is not None:
            target.sealed_previous_secret = box.seal(
                box.open(target.sealed_previous_secret, context=context), context=context
            )
        target.secrets_key_id = box.primary_kid
        count += 1
    await session.flush()
    return count
