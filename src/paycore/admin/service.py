"""Signing in and out of the console, and setting a password. Services take a session and never
commit; every change writes its audit row.

Sign-in answers the same for an unknown account, a wrong password and a locked account (and takes
as long: an unknown account is checked against a stand-in hash), so it tells an attacker nothing.
After `MAX_FAILURES` wrong passwords in a row the account is locked for `LOCKOUT`, whatever the
address the attempts came from; the per-IP rate limit is in front of it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.admin.models import AdminSession
from paycore.audit.service import Actor, record_audit
from paycore.auth.models import User
from paycore.auth.passwords import hash_password, password_problems, verify_password
from paycore.errors import NotFound, ValidationFailed
from paycore.tenancy.models import Tenant

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
_STAND_IN_HASH = hash_password(secrets.token_urlsafe(24))


# One answer for an unknown account, a wrong password and a locked account.
SIGN_IN_FAILED = "The email or password is wrong, or the account is locked for a while."


@dataclass(frozen=True, slots=True)
class SignedIn:
    session: AdminSession
    token: str
    user: User
    tenant: Tenant


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(
    session: AsyncSession, *, tenant_slug: str, email: str, password: str, actor: Actor, now: datetime
) -> SignedIn | None:
    """The new session, or None — returned, not raised, so the caller's transaction commits the
    failure count (a raise would roll the lockout back with it)."""
    row = (
        await session.execute(
            select(User, Tenant)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(Tenant.slug == tenant_slug.strip().lower(), User.email == email.strip().lower())
            .with_for_update(of=User)
        )
    ).one_or_none()
    if row is None:
        verify_password(_STAND_IN_HASH, password)  # as slow as a real check
        return None
    user, tenant = row
    if user.locked_until is not None and user.locked_until > now:
        verify_password(_STAND_IN_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_sign_ins = 0
            record_audit(
                session,
                actor=actor,
                action="user.locked",
                entity_type="user",
                entity_id=user.id,
                tenant_id=user.tenant_id,
                after={"until": user.locked_until.isoformat()},
            )
        return None
    user.failed_sign_ins = 0
    user.locked_until = None
    token = secrets.token_urlsafe(32)
    admin_session = AdminSession(
        token_hash=_digest(token),
        user_id=user.id,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(admin_session)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.signed_in",
        entity_type="user",
        entity_id=user.id,
        tenant_id=user.tenant_id,
    )
    return SignedIn(session=admin_session, token=token, user=user, tenant=tenant)


async def session_for(session: AsyncSession, token: str | None, *, now: datetime) -> SignedIn | None:
    if not token:
        return None
    row = (
        await session.execute(
            select(AdminSession, User, Tenant)
            .join(User, User.id == AdminSession.user_id)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(AdminSession.token_hash == _digest(token), AdminSession.expires_at > now)
        )
    ).one_or_none()
    if row is None:
        return None
    return SignedIn(session=row[0], token=token, user=row[1], tenant=row[2])


async def sign_out(session: AsyncSession, signed_in: SignedIn, *, actor: Actor) -> None:
    await session.execute(delete(AdminSession).where(AdminSession.id == signed_in.session.id))
    record_audit(
        session,
        actor=actor,
        action="user.signed_out",
        entity_type="user",
        entity_id=signed_in.user.id,
        tenant_id=signed_in.user.tenant_id,
    )


async def set_password(
    session: AsyncSession, *, tenant: Tenant, email: str, password: str, actor: Actor
) -> User:
    """Rotate a password: the lockout is lifted and every session of the account ends."""
    user = await session.scalar(
        select(User).where(User.tenant_id == tenant.id, User.email == email.strip().lower()).with_for_update()
    )
    if user is None:
        raise NotFound(f"No user {email} in tenant {tenant.slug}.", param="email")
    problems = password_problems(password, email=user.email)
    if problems:
        raise ValidationFailed("The password " + "; ".join(problems) + ".", param="password")
    user.password_hash = hash_password(password)
    user.failed_sign_ins = 0
    user.locked_until = None
    await session.execute(delete(AdminSession).where(AdminSession.user_id == user.id))
    record_audit(
        session,
        actor=actor,
        action="user.password_set",
        entity_type="user",
        entity_id=user.id,
        tenant_id=tenant.id,
    )
    return user
