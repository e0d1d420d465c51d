"""The caller's tenant context, from the `Authorization: Bearer <key>` header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from paycore.audit.service import Actor
from paycore.auth.context import TenantContext
from paycore.auth.key_cache import ApiKeyCache
from paycore.auth.keys import parse_api_key
from paycore.auth.models import KeyKind, Scope
from paycore.auth.schemes import PublishableKeyScheme, SecretKeyScheme
from paycore.clock import utcnow
from paycore.db import Database
from paycore.dependencies import DatabaseDep, client_ip
from paycore.errors import AuthenticationFailed, PermissionDenied
from paycore.idempotency.dependencies import replay_or_claim
from paycore.tenancy.standing import StandingCache

# Where a request keeps its authenticated context once the rate limiter has looked the key up, so
# the route does not look it up again.
CONTEXT_SCOPE_KEY = "paycore.tenant_context"


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationFailed(
            "No API key provided. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "Malformed Authorization header. Send 'Authorization: Bearer <key>'.",
            code="invalid_authorization_header",
        )
    return token.strip()


async def authenticate_headers(
    database: Database,
    keys: ApiKeyCache,
    *,
    authorization: str | None,
    ip: str | None,
    user_agent: str | None,
) -> TenantContext:
    presented = bearer_token(authorization)
    if parse_api_key(presented) is None:
        raise AuthenticationFailed("Invalid API key provided.")
    now = utcnow()
    known = await keys.authenticate(database, presented, now=now)
    if keys.use.note(known, now) and not keys.use.running:
        await keys.use.flush(database)  # served without the lifespan's flusher: write it now
    return TenantContext(
        tenant_id=known.tenant_id,
        tenant_slug=known.tenant_slug,
        livemode=known.livemode,
        key_id=known.key_id,
        key_kind=known.kind,
        scopes=known.scopes,
        actor=Actor(name=f"key:{known.key_id}", ip=ip, user_agent=user_agent),
    )


async def authenticate(request: Request, database: DatabaseDep) -> TenantContext:
    cached = request.scope.get(CONTEXT_SCOPE_KEY)
    if isinstance(cached, TenantContext):
        return cached
    return await authenticate_headers(
        database,
        request.app.state.api_keys,
        authorization=request.headers.get("authorization"),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


# Every dependency a route declares as its key check (the `…KeyDep` aliases below) ends with
# `replay_or_claim`: an Idempotency-Key is claimed, or its saved answer replayed, only once the
# caller has passed every check of that route. The steps they are built of do not claim.
_AuthenticatedDep = Annotated[TenantContext, Depends(authenticate)]

_Check = TypeVar("_Check", bound=Callable[..., Any])

# The key checks that claim an Idempotency-Key: the OpenAPI document lists the header on the POSTs
# whose route declares one of them (`paycore.openapi`).
IDEMPOTENT_KEY_CHECKS: set[Callable[..., Any]] = set()


def _claims_idempotency_key(check: _Check) -> _Check:
    IDEMPOTENT_KEY_CHECKS.add(check)
    return check


# The `_…_bearer` parameters below only declare the route's security schemes for the OpenAPI document.
@_claims_idempotency_key
async def require_any_key(
    request: Request,
    context: _AuthenticatedDep,
    _publishable_bearer: PublishableKeyScheme,
    _secret_bearer: SecretKeyScheme,
) -> TenantContext:
    await replay_or_claim(request, context)
    return context


AnyKeyDep = Annotated[TenantContext, Depends(require_any_key)]


async def _secret_key(context: _AuthenticatedDep, _secret_bearer: SecretKeyScheme) -> TenantContext:
    if context.key_kind is not KeyKind.SECRET:
        raise PermissionDenied(
            "This endpoint needs a secret key (sk_…); publishable keys reach only the storefront API.",
            code="secret_key_required",
        )
    return context


_SecretKeyStepDep = Annotated[TenantContext, Depends(_secret_key)]


@_claims_idempotency_key
async def require_secret_key(request: Request, context: _SecretKeyStepDep) -> TenantContext:
    await replay_or_claim(request, context)
    return context


SecretKeyDep = Annotated[TenantContext, Depends(require_secret_key)]


async def ensure_may_sell(request: Request, database: Database, context: TenantContext) -> None:
    """A suspended tenant, or one whose subscription is not active or trialing, is refused."""
    cache: StandingCache = request.app.state.standing
    if not (await cache.get(database, context.tenant_id)).may_sell:
        raise PermissionDenied(
            "This account is suspended; its platform operator can reactivate it.", code="tenant_suspended"
        )


@_claims_idempotency_key
async def require_storefront(
    request: Request,
    context: _AuthenticatedDep,
    database: DatabaseDep,
    _publishable_bearer: PublishableKeyScheme,
    _secret_bearer: SecretKeyScheme,
) -> TenantContext:
    await ensure_may_sell(request, database, context)
    await replay_or_claim(request, context)
    return context


# The storefront API takes either kind of key: publishable keys were made for it, and a merchant's
# own server may call it with its secret key.
StorefrontKeyDep = Annotated[TenantContext, Depends(require_storefront)]


def _requiring(scope: Scope) -> Callable[..., Awaitable[TenantContext]]:
    @_claims_idempotency_key
    async def require(request: Request, context: _SecretKeyStepDep, database: DatabaseDep) -> TenantContext:
        if scope not in context.scopes:
            raise PermissionDenied(
                f"This API key lacks the {scope.value} scope this endpoint needs.", code="insufficient_scope"
            )
        # Refunds of orders already paid go on while suspended: money is never held hostage.
        if scope is not Scope.REFUNDS:
            await ensure_may_sell(request, database, context)
        await replay_or_claim(request, context)
        return context

    return require


# Every merchant route declares what it needs: reads `read`, writes `write`, refunds `refunds`,
# the ops summary `ops`. A key made for a dashboard (read, ops) can look but not touch.
ReadKeyDep = Annotated[TenantContext, Depends(_requiring(Scope.READ))]
WriteKeyDep = Annotated[TenantContext, Depends(_requiring(Scope.WRITE))]
RefundsKeyDep = Annotated[TenantContext, Depends(_requiring(Scope.REFUNDS))]
OpsKeyDep = Annotated[TenantContext, Depends(_requiring(Scope.OPS))]
