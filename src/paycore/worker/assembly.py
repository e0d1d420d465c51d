"""Putting a worker together: channels, provisioners, dispatchers, jobs, wake-up, one HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from paycore.circuit import Breakers
from paycore.config import Settings
from paycore.db import Database
from paycore.fulfillment.dispatch import FulfillmentDispatcher
from paycore.fulfillment.provisioners.registry import build_provisioners
from paycore.merchant_webhooks.delivery import MerchantWebhookChannel
from paycore.merchant_webhooks.targets import guarded_client
from paycore.outbox.channels.base import Channel
from paycore.outbox.channels.email import EmailChannel, OpsAlertChannel
from paycore.outbox.channels.whatsapp import WhatsAppChannel
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel
from paycore.payments.providers.registry import ProviderRegistry
from paycore.worker.jobs import periodic_jobs
from paycore.worker.loop import Worker, default_worker_id
from paycore.worker.wakeup import wakeup_for


def build_channels(
    settings: Settings,
    database: Database,
    http: httpx.AsyncClient,
    merchant_http: httpx.AsyncClient | None = None,
) -> dict[OutboxChannel, Channel]:
    """`merchant_http` sends to URLs a merchant chose (see `guarded_client`); `http` to the rest."""
    email = EmailChannel(settings, database)
    return {
        OutboxChannel.EMAIL: email,
        OutboxChannel.OPS_ALERT: OpsAlertChannel(settings, email, database),
        OutboxChannel.WHATSAPP: WhatsAppChannel(settings, http),
        OutboxChannel.MERCHANT_WEBHOOK: MerchantWebhookChannel(settings, database, merchant_http or http),
    }


@asynccontextmanager
async def assembled_worker(
    settings: Settings,
    database: Database,
    registry: ProviderRegistry,
    breakers: Breakers,
    *,
    http: httpx.AsyncClient | None = None,
    worker_id: str | None = None,
) -> AsyncIterator[Worker]:
    """A ready worker; its HTTP clients are closed when the block ends. A test passes `http`
    (a fake transport) for every outbound call."""
    worker_id = worker_id or default_worker_id()
    owned = http is None
    client = http or httpx.AsyncClient(timeout=settings.provider_timeout_seconds, follow_redirects=False)
    merchant_client = http or guarded_client(settings, timeout=settings.provider_timeout_seconds)
    try:
        yield Worker(
            database,
            jobs=periodic_jobs(settings, registry),
            poll_interval=settings.worker_poll_interval_seconds,
            queues=[
                OutboxDispatcher(
                    database,
                    build_channels(settings, database, client, merchant_client),
                    settings,
                    worker_id=worker_id,
                ),
                FulfillmentDispatcher(
                    database,
                    build_provisioners(settings, database, client, merchant_client),
                    breakers,
                    settings,
                    providers=registry,
                    worker_id=worker_id,
                ),
            ],
            wakeup=wakeup_for(settings),
            worker_id=worker_id,
        )
    finally:
        if owned:
            await client.aclose()
            await merchant_client.aclose()
