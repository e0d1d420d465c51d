"""Sending the sandbox's queued webhooks over real HTTP, as a provider would: signed, retried on
failure with backoff, given up after a few tries. Copies and order are whatever chaos asked for."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.logging import get_logger
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.models import SandboxDelivery
from paycore.sandbox.signing import SIGNATURE_HEADER, sign

log = get_logger(__name__)

RETRY_DELAYS = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def webhook_url(settings: Settings, tenant_slug: str) -> str:
    return f"{settings.public_url}/webhooks/sandbox/{tenant_slug}"


async def deliver_due_webhooks(
    database: Database,
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    now: datetime | None = None,
    limit: int = 200,
) -> int:
    """Send what is due, oldest first and in queue order; returns how many were accepted."""
    now = now or utcnow()
    async with database.session(write=False) as session:
        due = list(
            await session.scalars(
                select(SandboxDelivery)
                .where(
                    SandboxDelivery.delivered_at.is_(None),
                    SandboxDelivery.attempts < MAX_ATTEMPTS,
                    SandboxDelivery.send_after <= now,
                )
                .order_by(SandboxDelivery.send_after, SandboxDelivery.created_at, SandboxDelivery.sequence)
                .limit(limit)
            )
        )
    accepted = 0
    for delivery in due:
        body = json.dumps(delivery.body, separators=(",", ":")).encode()
        secret = b"not-the-secret" if delivery.bad_signature else webhook_secret(settings, delivery.tenant_id)
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, int(time.time()), body)}
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(
                webhook_url(settings, delivery.tenant_slug), content=body, headers=headers
            )
            status = response.status_code
            if not response.is_success:
                error = response.text[:500]
                _warn_refused(delivery, response)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "sandbox_webhook_undelivered", url=webhook_url(settings, delivery.tenant_slug), error=error
            )
        async with database.session(write=True) as session:
            row = await session.get(SandboxDelivery, delivery.id)
            assert row is not None
            row.attempts += 1
            row.last_status = status
            row.last_error = error
            if error is None:
                row.delivered_at = utcnow()
                accepted += 1
            elif row.attempts < MAX_ATTEMPTS:
                row.send_after = utcnow() + RETRY_DELAYS[row.attempts - 1]
        if error is not None:
            log.info("sandbox_webhook_not_accepted", event_id=delivery.event_id, status=status, error=error)
    return accepted


def _warn_refused(delivery: SandboxDelivery, response: httpx.Response) -> None:
    """A refused sandbox webhook means a test payment never lands: say why, where a developer
    looks. A signature refusal usually means the webhook went to another server (PAYCORE_PUBLIC_URL
    pointing at a different port) or the server secret changed."""
    try:
        reason = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        reason = f"HTTP {response.status_code}"
    log.warning(
        "sandbox_webhook_refused",
        url=str(response.request.url),
        status=response.status_code,
        reason=reason,
        chaos_bad_signature=delivery.bad_signature,
    )
