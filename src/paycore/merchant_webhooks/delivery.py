"""Delivering one merchant event to every endpoint that wants it, per Standard Webhooks.

One outbox row is one event. Each delivery attempt to each endpoint is recorded; an endpoint that
already accepted the event is not called again when the row is retried for another one. The
`webhook-id` is the event's id, the same on every retry and every endpoint, so receivers drop
repeats. Redirects are not followed, the timeout is 15 s, 410 disables the endpoint, `Retry-After`
is honoured, and an endpoint failing for 5 days is disabled and the merchant alerted.

What an endpoint answered is recorded as its status code only, never its body: the URL is the
merchant's choice, and a body kept and shown back would let a merchant read whatever paycore's
network answers (an allowlisted internal receiver, a metadata service).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.logging import get_logger
from paycore.merchant_webhooks.models import WebhookAttempt, WebhookEndpoint
from paycore.merchant_webhooks.sealing import secrets_in_use
from paycore.merchant_webhooks.signing import signed_headers
from paycore.merchant_webhooks.targets import TargetRefused, check_target
from paycore.outbox.channels.base import DeliveryOutcome, retry_after_seconds
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.outbox.service import alert_ops
from paycore.sealing import SecretsKeyMissing, secrets_box
from paycore.secrets_box import SealError

log = get_logger(__name__)

TIMEOUT_SECONDS = 15.0
DISABLE_AFTER = timedelta(days=5)


@dataclass(frozen=True, slots=True)
class EndpointResult:
    endpoint_id: str
    ok: bool
    gone: bool
    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after: float | None


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return "*" in endpoint.events or event_type in endpoint.events


class MerchantWebhookChannel:
    channel = OutboxChannel.MERCHANT_WEBHOOK

    def __init__(self, settings: Settings, database: Database, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._database = database
        self._http = http

    async def _waiting_endpoints(self, message: OutboxMessage) -> list[WebhookEndpoint]:
        async with self._database.session(write=False) as session:
            endpoints = await session.scalars(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.tenant_id == message.tenant_id,
                    WebhookEndpoint.livemode == message.livemode,
                    WebhookEndpoint.enabled.is_(True),
                    WebhookEndpoint.deleted_at.is_(None),
                )
            )
            done = set(
                await session.scalars(
                    select(WebhookAttempt.endpoint_id).where(
                        WebhookAttempt.outbox_id == message.id, WebhookAttempt.succeeded.is_(True)
                    )
                )
            )
        return [
            endpoint for endpoint in endpoints if wants(endpoint, message.topic) and endpoint.id not in done
        ]

    async def _send(self, endpoint: WebhookEndpoint, message: OutboxMessage, body: bytes) -> EndpointResult:
        started = time.perf_counter()
        try:
            now = utcnow()
            signing = secrets_in_use(secrets_box(self._settings), endpoint, now)
        except (SealError, SecretsKeyMissing) as exc:
            # Never sent unsigned: a failed attempt, retried like any other, and said loudly.
            log.error("webhook_endpoint_secret_unreadable", endpoint=endpoint.id, error=str(exc))
            return EndpointResult(endpoint.id, False, False, None, 0, "signing secret unreadable", None)
        try:
            await check_target(endpoint.url, self._settings)
            headers = {
                "content-type": "application/json",
                "user-agent": "paycore-webhooks/1",
                **signed_headers(signing, str(message.payload["id"]), int(now.timestamp()), body),
            }
            response = await self._http.post(
                endpoint.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False
            )
        except TargetRefused as exc:
            return EndpointResult(endpoint.id, False, False, None, 0, str(exc), None)
        except Exception as exc:  # noqa: BLE001 (one endpoint's trouble is its own failed attempt)
            latency = int((time.perf_counter() - started) * 1000)
            # The exception's name only: a fixed reason, nothing the far end chose to say.
            return EndpointResult(endpoint.id, False, False, None, latency, type(exc).__name__, None)
        latency = int((time.perf_counter() - started) * 1000)
        return EndpointResult(
            endpoint_id=endpoint.id,
            ok=response.is_success,
            gone=response.status_code == 410,
            status_code=response.status_code,
            latency_ms=latency,
            error=None if response.is_success else f"HTTP {response.status_code}",
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )

    async def _record(self, message: OutboxMessage, results: list[EndpointResult]) -> None:
        """Keep the attempts and move endpoint state — with conditional UPDATEs that touch an
        endpoint row only when its state changes (a success on a healthy endpoint writes nothing
        to it), in endpoint-id order: deliveries to one endpoint never queue behind each other's
        row locks, and two transactions never wait on each other in a cycle."""
        now = utcnow()
        async with self._database.session(write=True) as session:
            for result in sorted(results, key=lambda item: item.endpoint_id):
                by_id = WebhookEndpoint.id == result.endpoint_id
                if result.ok:
                    await session.execute(
                        update(WebhookEndpoint)
                        .where(by_id, WebhookEndpoint.failing_since.is_not(None))
                        .values(failing_since=None)
                        .execution_options(synchronize_session=False)
                    )
                elif result.gone:
                    await session.execute(
                        update(WebhookEndpoint)
                        .where(by_id, WebhookEndpoint.enabled.is_(True))
                        .values(enabled=False, disabled_reason="the endpoint answered 410 Gone")
                        .execution_options(synchronize_session=False)
                    )
                else:
                    await self._record_failure(session, result.endpoint_id, now)
            session.add_all(
                WebhookAttempt(
                    tenant_id=message.tenant_id,
                    endpoint_id=result.endpoint_id,
                    outbox_id=message.id,
                    event_id=str(message.payload["id"]),
                    event_type=message.topic,
                    succeeded=result.ok,
                    status_code=result.status_code,
                    latency_ms=result.latency_ms,
                    error=result.error,
                    at=now,
                )
                for result in results
            )

    async def _record_failure(self, session: AsyncSession, endpoint_id: str, now: datetime) -> None:
        by_id = WebhookEndpoint.id == endpoint_id
        await session.execute(
            update(WebhookEndpoint)
            .where(by_id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
            .execution_options(synchronize_session=False)
        )
        disabled = (
            await session.execute(
                update(WebhookEndpoint)
                .where(
                    by_id,
                    WebhookEndpoint.enabled.is_(True),
                    WebhookEndpoint.failing_since <= now - DISABLE_AFTER,
                )
                .values(enabled=False, disabled_reason="failing for 5 days")
                .returning(
                    WebhookEndpoint.tenant_id,
                    WebhookEndpoint.livemode,
                    WebhookEndpoint.url,
                    WebhookEndpoint.failing_since,
                )
            )
        ).one_or_none()
        if disabled is not None:
            tenant_id, livemode, url, failing_since = disabled
            run_started = (failing_since or now).isoformat()
            await alert_ops(
                session,
                tenant_id=tenant_id,
                livemode=livemode,
                code="webhook_endpoint_disabled",
                message=f"Webhook endpoint {url} failed for 5 days and was disabled.",
                subject_key=f"{endpoint_id}:{run_started}",
                details={"endpoint": endpoint_id, "url": url},
            )

    async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
        endpoints = await self._waiting_endpoints(message)
        if not endpoints:
            return DeliveryOutcome.delivered("no endpoint waiting for this event")
        body = json.dumps(message.payload, separators=(",", ":")).encode()
        results = list(await asyncio.gather(*(self._send(endpoint, message, body) for endpoint in endpoints)))
        await self._record(message, results)
        failures = [result for result in results if not result.ok and not result.gone]
        if not failures:
            return DeliveryOutcome.delivered(f"{len(results)} endpoint(s)")
        retry_after = max((result.retry_after or 0.0 for result in failures), default=0.0) or None
        summary = "; ".join(f"{result.endpoint_id}: {result.error}" for result in failures)
        return DeliveryOutcome.failed(summary, retry_after=retry_after)
