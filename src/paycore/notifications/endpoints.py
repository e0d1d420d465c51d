from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from paycore.auth.dependencies import ReadKeyDep, WriteKeyDep
from paycore.dependencies import ReadSessionDep, WriteSessionDep
from paycore.notifications import service
from paycore.notifications.models import EmailTestRecipient
from paycore.notifications.schemas import EmailOut, RecipientIn, RecipientOut
from paycore.outbox.models import OutboxMessage, OutboxStatus
from paycore.schemas import DEFAULT_LIMIT, CursorQuery, LimitQuery, ListOut

router = APIRouter(prefix="/v1", tags=["emails"])


def recipient_out(recipient: EmailTestRecipient) -> RecipientOut:
    return RecipientOut(id=recipient.id, email=recipient.email, created=recipient.created_at)


def email_out(message: OutboxMessage) -> EmailOut:
    to, template = message.payload.get("to"), message.payload.get("template")
    return EmailOut(
        id=message.id,
        livemode=message.livemode,
        to=to if isinstance(to, str) else None,
        template=template if isinstance(template, str) else None,
        status=message.status,
        detail=message.last_error,
        attempts=message.attempts,
        created=message.created_at,
        sent_at=message.sent_at,
    )


@router.post(
    "/test_email_recipients",
    status_code=status.HTTP_201_CREATED,
    summary="Let test-mode customer emails reach this address",
)
async def add_test_recipient(
    body: RecipientIn, context: WriteKeyDep, session: WriteSessionDep
) -> RecipientOut:
    """Test-mode emails to customers go only to addresses listed here, so testing never mails a
    stranger. Needs a secret key with the `write` scope."""
    return recipient_out(await service.add_recipient(session, context, email=body.email))


@router.get("/test_email_recipients", summary="Addresses test-mode customer emails may reach")
async def list_test_recipients(
    context: ReadKeyDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[RecipientOut]:
    """The addresses test-mode customer emails may reach. Needs a secret key with the `read` scope."""
    page = await service.list_recipients(session, context, limit=limit, cursor=cursor)
    return ListOut(
        data=[recipient_out(r) for r in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )


@router.delete("/test_email_recipients/{recipient_id}", summary="Stop test-mode emails to this address")
async def remove_test_recipient(
    recipient_id: str, context: WriteKeyDep, session: WriteSessionDep
) -> RecipientOut:
    """Test-mode emails stop reaching this address. Needs a secret key with the `write` scope."""
    return recipient_out(await service.remove_recipient(session, context, recipient_id))


@router.get("/emails", summary="Customer emails and what became of them, newest first")
async def list_emails(
    context: ReadKeyDep,
    session: ReadSessionDep,
    status: Annotated[OutboxStatus | None, Query(description="e.g. `suppressed`")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[EmailOut]:
    """Emails to customers (receipts, refunds) and whether each was sent, is retrying or is dead;
    newest first. Needs a secret key with the `read` scope."""
    page = await service.list_emails(session, context, status=status, limit=limit, cursor=cursor)
    return ListOut(
        data=[email_out(m) for m in page.items], has_more=page.has_more, next_cursor=page.next_cursor
    )
