"""The ASGI application: routers, middleware, error handlers and the lifespan."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from redis.asyncio import Redis

from paycore import __version__
from paycore.admin.endpoints import router as admin_router
from paycore.auth.key_cache import ApiKeyCache
from paycore.carts.endpoints import router as carts_router
from paycore.catalog.endpoints import router as catalog_router
from paycore.catalog.endpoints import storefront_router as storefront_catalog_router
from paycore.checkout.durability import LIVE_PAYMENTS_NEED_POSTGRES
from paycore.checkout.endpoints import router as checkout_router
from paycore.config import Settings, load_settings
from paycore.customers.endpoints import router as customers_router
from paycore.db import Database, create_engine
from paycore.errors import install_error_handlers
from paycore.idempotency.dependencies import REPLAYED_HEADER, ReplaySaved, replay_saved_answer
from paycore.idempotency.middleware import IdempotencyMiddleware
from paycore.invalidation import CacheKind, invalidations_for
from paycore.logging import cache_loggers, configure_logging, get_logger
from paycore.merchant_webhooks.endpoints import router as webhook_endpoints_router
from paycore.merchant_webhooks.targets import warn_if_private_targets_allowed
from paycore.middleware import (
    REQUEST_ID_HEADER,
    BodyLimitMiddleware,
    EnvelopeCORSMiddleware,
    JsonDepthMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from paycore.notifications.endpoints import router as notifications_router
from paycore.openapi import build_openapi, operation_id
from paycore.ops.endpoints import router as ops_router
from paycore.orders.endpoints import router as orders_router
from paycore.payments.endpoints import webhook_router
from paycore.payments.providers.registry import ProviderRegistry, breakers_for, build_registry
from paycore.payments.webhook_tenants import WebhookTenants
from paycore.platform.endpoints import router as platform_router
from paycore.provider_credentials.endpoints import router as provider_credentials_router
from paycore.provider_credentials.service import CredentialStore, credential_cache, webhooks_without_secret
from paycore.provisioning_targets.endpoints import router as provisioning_targets_router
from paycore.ratelimit import RateLimiter, RateLimitMiddleware
from paycore.sandbox.endpoints import router as sandbox_router
from paycore.schemas import ERROR_RESPONSES
from paycore.server_templates.endpoints import router as server_templates_router
from paycore.tenancy.endpoints import router as tenancy_router
from paycore.tenancy.standing import StandingCache
from paycore.text_input import TextInputMiddleware

log = get_logger(__name__)

_CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    REQUEST_ID_HEADER,
    "X-Receipt-Token",
]
_CORS_EXPOSED = [REQUEST_ID_HEADER, REPLAYED_HEADER, "Retry-After"]


async def warn_about_refused_webhooks(database: Database, registry: ProviderRegistry) -> None:
    required = frozenset(name for name in registry.names if registry.get(name).webhook_secret_required)
    try:
        rows = await webhooks_without_secret(database, required)
    except Exception as exc:  # noqa: BLE001 (a start-up check must not stop the start)
        log.warning("provider_webhook_check_failed", error=repr(exc))
        return
    for row in rows:
        log.warning(
            "provider_webhooks_refused",
            provider=row.provider,
            tenant=row.tenant_id,
            livemode=row.livemode,
            why="keys are set but no webhook secret: every webhook from this provider is refused",
        )


def registry_for(app: FastAPI, database: Database) -> ProviderRegistry:
    """The providers, reading credentials through this app's cache of them."""
    settings: Settings = app.state.settings
    store = CredentialStore(database, settings, cache=app.state.credential_cache)
    return build_registry(settings, database, app.state.breakers, credentials=store)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app. A given `database` is used as is and left open at shutdown (tests)."""
    settings = settings or load_settings()
    if not structlog.is_configured():
        # Never log through structlog's defaults: they print events as given, secrets included.
        configure_logging(level=settings.log_level, json=settings.effective_log_format == "json")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_database = app.state.database is None
        if owns_database:
            app.state.database = Database(create_engine(settings))
        if app.state.providers is None:
            app.state.providers = registry_for(app, app.state.database)
        if settings.redis_url is not None:
            app.state.redis = Redis.from_url(settings.redis_url.get_secret_value())
        await app.state.invalidations.start(app.state.database)
        await app.state.api_keys.use.start(app.state.database)
        if settings.is_production:
            await warn_about_refused_webhooks(app.state.database, app.state.providers)
            if app.state.database.dialect_name == "sqlite":
                log.warning("live_payments_unavailable", reason=LIVE_PAYMENTS_NEED_POSTGRES)
        warn_if_private_targets_allowed(settings)
        log.info(
            "paycore_started",
            env=settings.env.value,
            database=app.state.database.dialect_name,
        )
        try:
            yield
        finally:
            app.state.shutting_down = True
            await app.state.invalidations.stop()
            await app.state.api_keys.use.stop(app.state.database)
            if app.state.providers is not None:
                await app.state.providers.aclose()
            if app.state.rate_limiter is not None:
                await app.state.rate_limiter.aclose()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owns_database:
                await app.state.database.dispose()
            log.info("paycore_stopped")

    app = FastAPI(
        title="paycore",
        version=__version__,
        summary="Self-hosted payments and orders service.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        responses=ERROR_RESPONSES,
        generate_unique_id_function=operation_id,
    )
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.instance_id = secrets.token_hex(8)
    app.state.database = database
    app.state.breakers = breakers_for(settings)
    app.state.redis = None
    app.state.rate_limiter = None
    app.state.invalidations = invalidations_for(settings)
    app.state.credential_cache = credential_cache(settings, app.state.invalidations)
    app.state.providers = registry_for(app, database) if database is not None else None
    app.state.standing = StandingCache(
        channel=app.state.invalidations, unconfirmed_seconds=settings.cache_unconfirmed_seconds
    )
    app.state.api_keys = ApiKeyCache(settings, app.state.invalidations)
    app.state.invalidations.subscribe(CacheKind.TENANT_STANDING, app.state.standing.drop)
    app.state.webhook_tenants = WebhookTenants()
    app.state.invalidations.subscribe(CacheKind.TENANT_STANDING, app.state.webhook_tenants.drop)
    app.state.shutting_down = False

    install_error_handlers(app)
    app.add_exception_handler(ReplaySaved, replay_saved_answer)
    if settings.cors_origins:
        app.add_middleware(
            EnvelopeCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=_CORS_HEADERS,
            expose_headers=_CORS_EXPOSED,
            max_age=600,
        )
    # Outermost last. A request meets: request id, security headers, the rate limit (before any
    # body is read), the size limit, the JSON depth check, the unstorable-character check (NUL,
    # lone surrogates), then idempotency and the route.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(TextInputMiddleware)
    app.add_middleware(JsonDepthMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.rate_limit_enabled:
        app.state.rate_limiter = RateLimiter(settings)
        app.add_middleware(RateLimitMiddleware, limiter=app.state.rate_limiter)
    app.add_middleware(SecurityHeadersMiddleware)
    # Added last, so it is the outermost: every response, even a CORS refusal, gets a request id.
    app.add_middleware(RequestContextMiddleware)

    for router in (
        ops_router,
        tenancy_router,
        catalog_router,
        storefront_catalog_router,
        carts_router,
        checkout_router,
        orders_router,
        customers_router,
        webhook_router,
        webhook_endpoints_router,
        provisioning_targets_router,
        notifications_router,
        provider_credentials_router,
        platform_router,
        server_templates_router,
        admin_router,
        sandbox_router,
    ):
        app.include_router(router)
    return app


def create_app_from_environment() -> FastAPI:
    """The factory `paycore serve --workers N` gives uvicorn: each process sets itself up."""
    settings = load_settings()
    configure_logging(level=settings.log_level, json=settings.effective_log_format == "json")
    cache_loggers()
    return create_app(settings)
