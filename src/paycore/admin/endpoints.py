"""`/admin/login`, `/admin/logout`, `/admin`: the console's sign-in mechanism.

Cookies are HttpOnly, SameSite (Strict for the pre-sign-in CSRF cookie, Lax for the session) and
Secure in production, scoped to `/admin`. Every form post carries a CSRF token: a double-submit
token before sign-in, an HMAC of the session id after.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from paycore.admin import csrf
from paycore.admin.service import SESSION_LIFETIME, SIGN_IN_FAILED, SignedIn, session_for, sign_in, sign_out
from paycore.audit.service import Actor
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.dependencies import DatabaseDep, SettingsDep, client_ip
from paycore.errors import PermissionDenied, RateLimited
from paycore.ratelimit import Bucket, LimitClass, RateLimiter
from paycore.server_secret import derive_key

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)

SESSION_COOKIE = "paycore_session"
LOGIN_CSRF_COOKIE = "paycore_login_csrf"
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


def _set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int,
    same_site: Literal["lax", "strict"],
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/admin",
        httponly=True,
        secure=settings.is_production,
        samesite=same_site,
    )


async def _form(request: Request) -> dict[str, str]:
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def _actor(request: Request, name: str) -> Actor:
    return Actor(name=name, ip=client_ip(request), user_agent=request.headers.get("user-agent"))


def _login_page(
    settings: Settings, *, error: str | None = None, tenant: str = "", email: str = "", status: int = 200
) -> HTMLResponse:
    token = csrf.new_token()
    html = _templates.get_template("login.html").render(
        csrf_token=token, error=error, tenant=tenant, email=email
    )
    response = HTMLResponse(html, status_code=status)
    _set_cookie(response, settings, LOGIN_CSRF_COOKIE, token, max_age=3600, same_site="strict")
    return response


async def _signed_in(request: Request, database: DatabaseDep) -> SignedIn | None:
    async with database.session(write=False) as session:
        return await session_for(session, request.cookies.get(SESSION_COOKIE), now=utcnow())


async def _limit_per_account(request: Request, tenant: str, email: str) -> None:
    """The per-IP limit is in front (middleware); this one holds when the attempts on one
    account come from many addresses."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    account = hashlib.sha256(f"{tenant.strip().lower()}\x1f{email.strip().lower()}".encode()).hexdigest()[:32]
    try:
        wait = await limiter.retry_after(Bucket(LimitClass.SIGNIN, f"account:{account}"))
    except Exception:  # noqa: BLE001 (fail open, as the middleware does; the lockout still holds)
        return
    if wait is not None:
        raise RateLimited(
            f"Too many sign-in attempts for this account; try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )


@router.get("/login")
async def login_form(settings: SettingsDep) -> HTMLResponse:
    return _login_page(settings)


@router.post("/login")
async def login(request: Request, database: DatabaseDep, settings: SettingsDep) -> Response:
    form = await _form(request)
    if not csrf.same_token(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
        raise PermissionDenied(
            "The form expired or did not come from this site; load it again.", code="csrf_failed"
        )
    tenant, email = form.get("tenant", ""), form.get("email", "")
    await _limit_per_account(request, tenant, email)
    async with database.session(write=True) as session:
        signed_in = await sign_in(
            session,
            tenant_slug=tenant,
            email=email,
            password=form.get("password", ""),
            actor=_actor(request, f"console:{email[:100]}"),
            now=utcnow(),
        )
    if signed_in is None:
        return _login_page(settings, error=SIGN_IN_FAILED, tenant=tenant, email=email, status=401)
    response = RedirectResponse("/admin", status_code=303)
    _set_cookie(
        response,
        settings,
        SESSION_COOKIE,
        signed_in.token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        same_site="lax",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    return response


@router.get("")
async def home(request: Request, database: DatabaseDep, settings: SettingsDep) -> Response:
    signed_in = await _signed_in(request, database)
    if signed_in is None:
        return RedirectResponse("/admin/login", status_code=303)
    html = _templates.get_template("home.html").render(
        email=signed_in.user.email,
        role=signed_in.user.role.value,
        tenant=signed_in.tenant.name,
        csrf_token=csrf.session_token(derive_key(settings, "admin-csrf"), signed_in.session.id),
    )
    return HTMLResponse(html)


@router.post("/logout")
async def logout(request: Request, database: DatabaseDep, settings: SettingsDep) -> Response:
    signed_in = await _signed_in(request, database)
    if signed_in is None:
        return RedirectResponse("/admin/login", status_code=303)
    form = await _form(request)
    if not csrf.session_token_matches(
        derive_key(settings, "admin-csrf"), signed_in.session.id, form.get("csrf_token")
    ):
        raise PermissionDenied("The form did not come from this site; load it again.", code="csrf_failed")
    async with database.session(write=True) as session:
        await sign_out(session, signed_in, actor=_actor(request, f"console:{signed_in.user.email}"))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response
