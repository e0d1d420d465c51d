"""Prometheus metrics. Process-wide, like the process they describe.

With several server processes (`paycore serve --workers N`) each process writes its samples to
`PROMETHEUS_MULTIPROC_DIR` and a scrape of any one of them aggregates all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Unmatched paths share one label, so a scanner cannot blow up the series count.
UNMATCHED_ROUTE = "<unmatched>"
# Likewise methods outside the standard few: some servers take any token as a method.
OTHER_METHOD = "<other>"

HTTP_REQUESTS = Counter(
    "paycore_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "paycore_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
READINESS_FAILURES = Counter(
    "paycore_readiness_failures_total",
    "Readiness checks that failed, by check.",
    ["check"],
)


def render_latest() -> tuple[bytes, str]:
    """The exposition text of this process, or of every process in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


RATE_LIMITED = Counter(
    "paycore_rate_limited_total",
    "Requests refused with 429 by the rate limiter, by limit class.",
    ["limit_class"],
)
RATE_LIMIT_EVICTIONS = Counter(
    "paycore_rate_limit_evictions_total",
    "Rate-limit counters dropped from process memory to stay under PAYCORE_RATE_LIMIT_MEMORY_MAX_KEYS.",
)
RATE_LIMITER_ERRORS = Counter(
    "paycore_rate_limiter_errors_total",
    "Times the rate limiter's storage failed and a request went through unchecked.",
)
WEBHOOK_REJECTIONS = Counter(
    "paycore_webhook_rejections_total",
    "Inbound provider webhooks refused before storage (bad signature, unknown tenant, …), by reason.",
    ["provider", "reason"],
)
WEBHOOK_EVENTS = Counter(
    "paycore_webhook_events_total",
    "Inbound provider events by what happened to them: applied, ignored, unmatched, mismatch, "
    "duplicate, deferred (apply failed, will retry), failed (gave up).",
    ["provider", "outcome"],
)
CHECKOUTS = Counter(
    "paycore_checkouts_total",
    "Checkout requests by outcome.",
    ["outcome"],
)
PROVIDER_CALL_FAILURES = Counter(
    "paycore_provider_call_failures_total",
    "Calls to a payment provider that failed or timed out, by provider and operation.",
    ["provider", "operation"],
)
ORDERS_EXPIRED = Counter("paycore_orders_expired_total", "Orders expired unpaid by the expiry job.")
PAYMENTS_RECONCILED = Counter(
    "paycore_payments_reconciled_total",
    "Payment attempts whose outcome reconciliation learned from the provider's status API.",
    ["provider", "state"],
)
# Breakers are labelled by `target`, the remote system's name from a closed set the code defines
# (`provider:stripe`, `provisioner:http`), and `scope` (shared or tenant): never by tenant or host,
# which would let tenants grow the series count and read each other's trouble off /metrics.
CIRCUIT_STATE = Gauge(
    "paycore_circuit_state",
    "Shared circuit breaker state by target: 0 closed, 1 half-open, 2 open.",
    ["target"],
    multiprocess_mode="livemax",
)
CIRCUIT_OPEN_BREAKERS = Gauge(
    "paycore_circuit_open_breakers",
    "Circuit breakers not closed (open or half-open), by target and scope (shared, tenant).",
    ["target", "scope"],
    multiprocess_mode="livesum",
)
CIRCUIT_REJECTIONS = Counter(
    "paycore_circuit_rejections_total",
    "Calls refused at once because a circuit was open, by target and scope of that circuit.",
    ["target", "scope"],
)
OUTBOX_DEPTH = Gauge(
    "paycore_outbox_messages",
    "Outbox rows by channel and status (sampled by the worker).",
    ["channel", "status"],
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_DUE_SECONDS = Gauge(
    "paycore_outbox_oldest_due_seconds",
    "Age of the oldest outbox row that is due and not yet delivered (sampled by the worker).",
    multiprocess_mode="livemax",
)
OUTBOX_DELIVERIES = Counter(
    "paycore_outbox_deliveries_total",
    "Outbox delivery attempts by channel and result: sent, retry, dead.",
    ["channel", "result"],
)
FULFILLMENT_ATTEMPTS = Counter(
    "paycore_fulfillment_attempts_total",
    "Provisioning attempts by result: succeeded, retry, needs_attention.",
    ["result"],
)
JOB_RUNS = Counter(
    "paycore_job_runs_total", "Periodic job runs by job and result: ok, failed.", ["job", "result"]
)
JOB_DURATION = Histogram(
    "paycore_job_duration_seconds",
    "Time a periodic job run took.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
