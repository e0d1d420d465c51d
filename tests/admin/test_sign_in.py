"""Console sign-in: argon2-checked passwords, a session cookie with the right flags, CSRF on every
form post, a lockout after repeated failures, and password rotation that ends sessions."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from paycore.admin.models import AdminSession
from paycore.admin.service import MAX_FAILURES, SESSION_LIFETIME, session_for, set_password
from paycore.admin.service import sign_in as sign_in_service
from paycore.app import create_app
from paycore.audit.service import Actor
from paycore.auth.service import create_owner
from paycore.clock import utcnow
from paycore.db import Database
from paycore.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.flows.helpers import Shop, open_shop

FIXED_TIME = 1_800_000_000.0

PASSWORD = "correct horse battery staple 42"
ACTOR = Actor(name="test:admin")


@pytest.fixture
async def owner(db: Database) -> tuple[Shop, str]:
    shop = await open_shop(db)
    async with db.session() as session:
        tenant = await session.get(Tenant, shop.tenant_id)
        assert tenant is not None
        await create_owner(session, tenant=tenant, email="owner@shop.test", password=PASSWORD, actor=ACTOR)
    return shop, "owner@shop.test"


async def login_form(client: httpx.AsyncClient) -> str:
    page = await client.get("/admin/login")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, slug: str, email: str, password: str) -> httpx.Response:
    token = await login_form(client)
    return await client.post(
        "/admin/login",
        data={"csrf_token": token, "tenant": slug, "email": email, "password": password},
        follow_redirects=False,
    )


class TestSignIn:
    async def test_a_right_password_opens_a_session_and_sign_out_ends_it(
        self, db: Database, client: httpx.AsyncClient, owner: tuple[Shop, str]
    ) -> None:
        shop, email = owner
        response = await sign_in(client, shop.slug, email, PASSWORD)
        assert (response.status_code, response.headers["location"]) == (303, "/admin")
        cookie = next(
            value for value in response.headers.get_list("set-cookie") if value.startswith("paycore_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
        assert "Secure" not in cookie  # development: plain http

        home = await client.get("/admin")
        assert home.status_code == 200 and email in home.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
        assert token is not None

        forged = await client.post("/admin/logout", data={"csrf_token": "forged"}, follow_redirects=False)
        assert (forged.status_code, forged.json()["error"]["code"]) == (403, "csrf_failed")
        out = await client.post("/admin/logout", data={"csrf_token": token.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        async with db.session(write=False) as session:
            assert await session.scalar(select(func.count()).select_from(AdminSession)) == 0
        assert (await client.get("/admin", follow_redirects=False)).headers["location"] == "/admin/login"

    async def test_a_post_without_the_form_s_csrf_token_is_refused(
        self, client: httpx.AsyncClient, owner: tuple[Shop, str]
    ) -> None:
        shop, email = owner
        await login_form(client)
        response = await client.post(
            "/admin/login",
            data={"csrf_token": "not-the-cookie", "tenant": shop.slug, "email": email, "password": PASSWORD},
        )
        assert (response.status_code, response.json()["error"]["code"]) == (403, "csrf_failed")

    async def test_wrong_password_and_unknown_account_answer_alike(
        self, client: httpx.AsyncClient, owner: tuple[Shop, str]
    ) -> None:
        shop, email = owner
        wrong = await sign_in(client, shop.slug, email, "not the password at all")
        unknown = await sign_in(client, shop.slug, "nobody@shop.test", PASSWORD)
        assert wrong.status_code == unknown.status_code == 401
        message = "The email or password is wrong, or the account is locked for a while."
        assert message in wrong.text and message in unknown.text

    async def test_repeated_failures_lock_the_account_until_the_password_is_set(
        self, db: Database, client: httpx.AsyncClient, owner: tuple[Shop, str]
    ) -> None:
        shop, email = owner
        for _ in range(MAX_FAILURES):
            assert (await sign_in(client, shop.slug, email, "guess guess guess")).status_code == 401
        locked = await sign_in(client, shop.slug, email, PASSWORD)
        assert locked.status_code == 401  # the right password, but locked
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            user = await set_password(
                session, tenant=tenant, email=email, password=PASSWORD + "!", actor=ACTOR
            )
            assert user.locked_until is None
        assert (await sign_in(client, shop.slug, email, PASSWORD + "!")).status_code == 303


class TestCookiesInProduction:
    async def test_cookies_are_secure(self, db: Database, owner: tuple[Shop, str]) -> None:
        shop, email = owner
        production = make_settings(
            env="production",
            checkout_token_secret="k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ",
            database_url=db.engine.url.render_as_string(hide_password=False),
        )
        app = create_app(production, database=db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://paycore.test"
        ) as http:
            page = await http.get("/admin/login")
            assert "Secure" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
            response = await sign_in(http, shop.slug, email, PASSWORD)
        session_cookie = next(
            v for v in response.headers.get_list("set-cookie") if v.startswith("paycore_session=")
        )
        assert "Secure" in session_cookie


class TestSignInRateLimit:
    async def test_sign_in_is_limited_per_address(self, db: Database, owner: tuple[Shop, str]) -> None:
        shop, email = owner
        settings = make_settings(
            database_url=db.engine.url.render_as_string(hide_password=False),
            rate_limit_enabled=True,
            rate_limit_signin="4/minute",
        )
        app = create_app(settings, database=db)
        app.state.rate_limiter.clock = lambda: FIXED_TIME  # no window boundary to straddle
        transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as http:
            first = await sign_in(http, shop.slug, email, "wrong wrong wrong")  # a GET and a POST
            second = await sign_in(http, shop.slug, email, "wrong wrong wrong")
            assert (first.status_code, second.status_code) == (401, 401)
            third = await http.get("/admin/login")
        assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
        await app.state.rate_limiter.aclose()


class TestSignInRateLimitPerAccount:
    async def test_attempts_on_one_account_from_many_addresses_are_limited(
        self, db: Database, owner: tuple[Shop, str]
    ) -> None:
        shop, email = owner
        settings = make_settings(
            database_url=db.engine.url.render_as_string(hide_password=False),
            rate_limit_enabled=True,
            rate_limit_signin="3/minute",
        )
        app = create_app(settings, database=db)
        app.state.rate_limiter.clock = lambda: FIXED_TIME  # no window boundary to straddle
        codes = []
        for n in range(4):  # each from its own address: only the per-account limit can stop them
            transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{n + 1}", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as http:
                codes.append((await sign_in(http, shop.slug, email, "wrong wrong wrong")).status_code)
        await app.state.rate_limiter.aclose()
        assert codes == [401, 401, 401, 429]


async def test_a_session_ends_when_it_expires(db: Database, owner: tuple[Shop, str]) -> None:
    shop, email = owner
    async with db.session() as session:
        signed_in = await sign_in_service(
            session, tenant_slug=shop.slug, email=email, password=PASSWORD, actor=ACTOR, now=utcnow()
        )
        assert signed_in is not None
        later = utcnow() + SESSION_LIFETIME + timedelta(seconds=1)
        assert await session_for(session, signed_in.token, now=utcnow()) is not None
        assert await session_for(session, signed_in.token, now=later) is None
