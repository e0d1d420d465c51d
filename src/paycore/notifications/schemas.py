from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr

from paycore.outbox.models import OutboxStatus
from paycore.schemas import StrictInput


class RecipientIn(StrictInput):
    email: EmailStr


class RecipientOut(BaseModel):
    id: str
    object: Literal["test_email_recipient"] = "test_email_recipient"
    email: str
    created: datetime


class EmailOut(BaseModel):
    """One customer email: whom it was for, and what became of it (`detail` says why a
    `suppressed` or `dead` one did not go)."""

    id: str
    object: Literal["email"] = "email"
    livemode: bool
    to: str | None
    template: str | None
    status: OutboxStatus
    detail: str | None
    attempts: int
    created: datetime
    sent_at: datetime | None
