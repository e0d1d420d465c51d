"""API keys and console users: create, verify, revoke. Services take a session, never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.auth.keys import generate_api_key, key_matches, parse_api_key
from paycore.auth.models import ApiKey, KeyKind, KeyMode, Scope, User, UserRole
from paycore.auth.passwords import hash_password, password_problems
from paycore.clock import utcnow
from paycore.errors import AuthenticationFailed, NotFound, ValidationFailed
from paycore.tenancy.models import Tenant

# Scopes a merchant's secret key may carry; `platform` belongs to platform-operator keys only.
MERCHANT_SCOPES = (Scope.READ, Scope.WRITE, Scope.REFUNDS, Scope.OPS)
DEFAULT_SECRET_SCOPES = (Scope.READ, Scope.WRITE, Scope.REFUNDS)

# Writing `last_used_at` on every request would turn every read into a write; once a minute is
# precise enough to answer "is this key still in use?".
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    plaintext: str


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    key: ApiKey
    tenant: Tenant


def parse_scopes(raw: Iterable[str], *, kind: KeyKind) -> list[str]:
    """Validated, de-duplicated scope names in a stable order."""
    if kind is KeyKind.PUBLISHABLE:
        if list(raw):
            raise ValidationFailed(
                "publishable keys carry no scopes: they reach only the storefront API.",
                param="scopes",
            )
        return []
    wanted = {item.strip() for item in raw if item.strip()}
    allowed = {scope.value for scope in MERCHANT_SCOPES}
    unknown = sorted(wanted - allowed)
    if unknown:
        raise ValidationFailed(
            f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(sorted(allowed))}.",
            param="scopes",
        )
    if not wanted:
        wanted = {scope.value for scope in DEFAULT_SECRET_SCOPES}
    return [scope.value for scope in MERCHANT_SCOPES if scope.value in wanted]


async def create_api_key(
    session: AsyncSession,
    *,
    tenant: Tenant,
    mode: KeyMode,
    kind: KeyKind,
    actor: Actor,
    scopes: Sequence[str] = (),
    name: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> CreatedKey:
    """A new key; its plaintext exists only in the returned value and is never stored."""
    now = now or utcnow()
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed("expires_at must be in the future.", param="expires_at")
    generated = generate_api_key(kind, mode)
    key = ApiKey(
        tenant_id=tenant.id,
        name=name,
        prefix=generated.prefix,
        secret_hash=generated.secret_hash,
        last4=generated.last4,
        mode=mode,
        kind=kind,
        scopes=parse_scopes(scopes, kind=kind),
        expires_at=expires_at,
        created_at=now,
    )
    session.add(key)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="api_key.created",
        entity_type="api_key",
        entity_id=key.id,
        tenant_id=tenant.id,
        after={
            "prefix": key.prefix,
            "mode": mode.value,
            "kind": kind.value,
            "scopes": key.scopes,
        },
    )
    return CreatedKey(key=key, plaintext=generated.plaintext)


async def list_api_keys(session: AsyncSession, *, tenant_id: str) -> list[ApiKey]:
    result = await session.scalars(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(result)


async def revoke_api_key(
    session: AsyncSession,
    *,
    tenant_id: str,
    key_id: str,
    actor: Actor,
    now: datetime | None = None,
) -> tuple[ApiKey, bool]:
    """Revoke a key; returns it and whether this call revoked it (False: it already was)."""
    key = await session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id))
    if key is None:
        raise NotFound(f"No API key '{key_id}' for this tenant.", param="key_id")
    if key.revoked_at is not None:
        return key, False
    key.revoked_at = now or utcnow()
    record_audit(
        session,
        actor=actor,
        action="api_key.revoked",
        entity_type="api_key",
        entity_id=key.id,
        tenant_id=tenant_id,
        before={"revoked_at": None},
        after={"revoked_at": key.revoked_at.isoformat()},
    )
    await session.flush()
    return key, True


async def authenticate_api_key(
    session: AsyncSession, presented: str, *, now: datetime | None = None
) -> AuthenticatedKey:
    """The key and tenant behind `presented`, or `AuthenticationFailed`.

    Rows are found by the non-secret prefix; the full key is then compared in constant time.
    """
    now = now or utcnow()
    parsed = parse_api_key(presented)
    if parsed is None:
        raise AuthenticationFailed("Invalid API key provided.")
    rows = await session.execute(
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.prefix == parsed.prefix)
    )
    for key, tenant in rows:
        if key_matches(presented, key.secret_hash):
            if key.revoked_at is not None:
                raise AuthenticationFailed("This API key has been revoked.", code="api_key_revoked")
            if key.expires_at is not None and key.expires_at <= now:
                raise AuthenticationFailed("This API key has expired.", code="api_key_expired")
            return AuthenticatedKey(key=key, tenant=tenant)
    raise AuthenticationFailed("Invalid API key provided.")


async def touch_api_key(session: AsyncSession, *, key_id: str, now: datetime | None = None) -> bool:
    """Record use of a key, at most once per `LAST_USED_RESOLUTION`; True when it wrote."""
    now = now or utcnow()
    result = await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def touch_api_keys(session: AsyncSession, *, key_ids: Sequence[str], now: datetime) -> None:
    """Record use of several keys in one statement (the keys' batched `last_used_at`)."""
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id.in_(key_ids),
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at < now - LAST_USED_RESOLUTION


async def create_owner(
    session: AsyncSession, *, tenant: Tenant, email: str, password: str, actor: Actor
) -> tuple[User, bool]:
    """The tenant's owner account; returns (user, created). An existing account is left as is."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise ValidationFailed("email is not an email address.", param="email")
    existing = await session.scalar(select(User).where(User.tenant_id == tenant.id, User.email == email))
    if existing is not None:
        return existing, False
    problems = password_problems(password, email=email)
    if problems:
        raise ValidationFailed("The password " + "; ".join(problems) + ".", param="password")
    user = User(
        tenant_id=tenant.id,
        email=email,
        password_hash=hash_password(password),
        role=UserRole.OWNER,
    )
    session.add(user)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        tenant_id=tenant.id,
        after={"email": email, "role": UserRole.OWNER.value},
    )
    return user, True
