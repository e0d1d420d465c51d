"""The periodic jobs the worker runs, in one explicit list. Each runs once per period across all
workers (see `worker.loop`)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from paycore.config import Settings
from paycore.db import Database
from paycore.idempotency.service import prune_keys
from paycore.orders.expiry import expire_due_orders
from paycore.outbox.service_admin import sample_depth
from paycore.payments.inbox import retry_unapplied_events
from paycore.payments.providers.registry import ProviderRegistry
from paycore.payments.reconcile import reconcile_open_payments
from paycore.payments.refunds import submit_pending_refunds
from paycore.sandbox.delivery import deliver_due_webhooks
from paycore.worker.loop import PeriodicJob


def periodic_jobs(settings: Settings, registry: ProviderRegistry) -> list[PeriodicJob]:
    period = timedelta(seconds=settings.job_period_seconds)

    async def expire_orders(database: Database) -> None:
        await expire_due_orders(database)

    async def reconcile_payments(database: Database) -> None:
        await reconcile_open_payments(database, registry, settings)

    async def retry_payment_events(database: Database) -> None:
        await retry_unapplied_events(database, registry, settings)

    async def submit_refunds(database: Database) -> None:
        await submit_pending_refunds(database, registry)

    async def prune_idempotency_keys(database: Database) -> None:
        async with database.session(write=True) as session:
            await prune_keys(session, older_than=timedelta(hours=settings.idempotency_key_ttl_hours))

    async def sample_outbox_depth(database: Database) -> None:
        async with database.session(write=False) as session:
            await sample_depth(session)

    async def deliver_sandbox_webhooks(database: Database) -> None:
        # The sandbox plays an external provider: it calls paycore's public URL like one would.
        async with httpx.AsyncClient(
            timeout=settings.provider_timeout_seconds, follow_redirects=False
        ) as client:
            await deliver_due_webhooks(database, settings, client)

    return [
        PeriodicJob(name="expire_orders", period=period, run=expire_orders),
        PeriodicJob(name="reconcile_payments", period=period, run=reconcile_payments),
        PeriodicJob(name="retry_payment_events", period=period, run=retry_payment_events),
        PeriodicJob(name="submit_refunds", period=period, run=submit_refunds),
        PeriodicJob(name="prune_idempotency_keys", period=timedelta(hours=1), run=prune_idempotency_keys),
        PeriodicJob(name="sample_outbox_depth", period=timedelta(seconds=15), run=sample_outbox_depth),
        PeriodicJob(
            name="deliver_sandbox_webhooks",
            period=timedelta(seconds=max(1.0, settings.worker_poll_interval_seconds)),
            run=deliver_sandbox_webhooks,
        ),
    ]
