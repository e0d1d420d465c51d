"""Whom a test-mode email may reach, and what became of a tenant's emails.

A publishable key is public and a test payment costs nothing, so without a rule anyone could have
a shop send its confirmation email, greeting a name of their choosing, to any address: a free
relay under the shop's name. Like Stripe's test mode, test-mode customer emails go only to
addresses the tenant vouches for — its console users' and the verified test recipients listed
here. The rest are written to the outbox as usual and then `suppressed`, with the reason, for the
merchant to see (`GET /v1/emails`). Services take a session and never commit.
"""

from __future__ import annotations

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import record_audit
from paycore.auth.context import TenantContext
from paycore.auth.models import User
from paycore.errors import Conflict, NotFound
from paycore.notifications.models import EmailTestRecipient
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.pagination import Page, paginate

SUPPRESSED_REASON = (
    "suppressed: test-mode emails go only to the shop's console users and its verified test "
    "recipients (POST /v1/test_email_recipients)"
)


async def may_receive_test_email(session: AsyncSession, *, tenant_id: str, address: str) -> bool:
    """Whether `address` is one the tenant vouches for (a console user or a listed recipient)."""
    address = address.strip().lower()
    console_user = select(User.id).where(User.tenant_id == tenant_id, func.lower(User.email) == address)
    listed = select(EmailTestRecipient.id).where(
        EmailTestRecipient.tenant_id == tenant_id,
        EmailTestRecipient.livemode.is_(False),
        EmailTestRecipient.email == address,
    )
    return bool(await session.scalar(select(or_(exists(console_user), exists(listed)))))


def _audit(session: AsyncSession, context: TenantContext, recipient: EmailTestRecipient, action: str) -> None:
    record_audit(
        session,
        actor=context.actor,
        action=f"test_email_recipient.{action}",
        entity_type="test_email_recipient",
        entity_id=recipient.id,
        tenant_id=context.tenant_id,
        after={"email": recipient.email},
    )


async def add_recipient(session: AsyncSession, context: TenantContext, *, email: str) -> EmailTestRecipient:
    recipient = EmailTestRecipient(
        tenant_id=context.tenant_id, livemode=context.livemode, email=email.strip().lower()
    )
    try:
        async with session.begin_nested():
            session.add(recipient)
    except IntegrityError:
        raise Conflict(
            f"'{recipient.email}' is already a test recipient.", code="test_recipient_exists", param="email"
        ) from None
    _audit(session, context, recipient, "added")
    return recipient


async def get_recipient(
    session: AsyncSession, context: TenantContext, recipient_id: str
) -> EmailTestRecipient:
    recipient = await session.scalar(
        select(EmailTestRecipient).where(
            EmailTestRecipient.id == recipient_id,
            EmailTestRecipient.tenant_id == context.tenant_id,
            EmailTestRecipient.livemode == context.livemode,
        )
    )
    if recipient is None:
        raise NotFound(f"No such test recipient: '{recipient_id}'.", param="id")
    return recipient


async def list_recipients(
    session: AsyncSession, context: TenantContext, *, limit: int, cursor: str | None
) -> Page[EmailTestRecipient]:
    statement = select(EmailTestRecipient).where(
        EmailTestRecipient.tenant_id == context.tenant_id, EmailTestRecipient.livemode == context.livemode
    )
    return await paginate(
        session,
        statement,
        created_at=EmailTestRecipient.created_at,
        id_column=EmailTestRecipient.id,
        limit=limit,
        cursor=cursor,
    )


async def remove_recipient(
    session: AsyncSession, context: TenantContext, recipient_id: str
) -> EmailTestRecipient:
    recipient = await get_recipient(session, context, recipient_id)
    await session.delete(recipient)
    _audit(session, context, recipient, "removed")
    return recipient


async def list_emails(
    session: AsyncSession,
    context: TenantContext,
    *,
    status: OutboxStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[OutboxMessage]:
    """The customer emails of the caller's tenant and mode, newest first."""
    statement = select(OutboxMessage).where(
        OutboxMessage.tenant_id == context.tenant_id,
        OutboxMessage.livemode == context.livemode,
        OutboxMessage.channel == OutboxChannel.EMAIL,
    )
    if status is not None:
        statement = statement.where(OutboxMessage.status == status)
    return await paginate(
        session,
        statement,
        created_at=OutboxMessage.created_at,
        id_column=OutboxMessage.id,
        limit=limit,
        cursor=cursor,
    )
