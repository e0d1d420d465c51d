"""The caller's tenant context, from the `Authorization: Bearer <key>` header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from paycore.audit.service import Actor
from paycore.auth.models import KeyKind, Scope
from paycore.auth.service import authenticate_api_key, needs_touch, touch_api_key
from paycore.clock import utcnow
from paycore.dependencies import DatabaseDep, client_ip
from paycore.errors import AuthenticationFailed, PermissionDenied


@dataclass(frozen=True, slots=True)
class TenantContext:
    tenant_id: str
    tenant_slug: str
    livemode: bool
    key_id: str
    key_kind: KeyKind
    scopes: frozenset[Scope]
    actor: Actor


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationFailed(
            "No API key provided. Send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "Malformed Authorization header. Send 'Authorization: Bearer <key>'.",
            code="invalid_authorization_header",
        )
    return token.strip()


async def authenticate(request: Request, database: DatabaseDep) -> TenantContext:
    presented = _bearer_token(request)
    now = utcnow()
    async with database.session(write=False) as session:
        found = await authenticate_api_key(session, presented, now=now)
    if needs_touch(found.key, now):
        async with database.session(write=True) as session:
            await touch_api_key(session, key_id=found.key.id, now=now)
    return TenantContext(
        tenant_id=found.tenant.id,
        tenant_slug=found.tenant.slug,
        livemode=found.key.livemode,
        key_id=found.key.id,
        key_kind=found.key.kind,
        scopes=frozenset(Scope(scope) for scope in found.key.scopes),
        actor=Actor(
            name=f"key:{found.key.id}",
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        ),
    )


AnyKeyDep = Annotated[TenantContext, Depends(authenticate)]


async def require_secret_key(context: AnyKeyDep) -> TenantContext:
    if context.key_kind is not KeyKind.SECRET:
        raise PermissionDenied(
            "This endpoint needs a secret key (sk_…); publishable keys reach only the storefront API.",
            code="secret_key_required",
        )
    return context


SecretKeyDep = Annotated[TenantContext, Depends(require_secret_key)]
