"""Finding 17: CORS answered over HTTP — a storefront origin on the allowlist may call the API
from a browser, any other origin gets no CORS grant (so the browser withholds the answer)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from paycore.app import create_app
from paycore.db import Database
from tests.conftest import make_settings
from tests.flows.helpers import Shop, open_shop

ALLOWED = "https://shop.example"
REFUSED = "https://evil.example"


@pytest.fixture
async def browser(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url=db.engine.url.render_as_string(hide_password=False), cors_origins=ALLOWED
    )
    app = create_app(settings, database=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


class TestCors:
    async def test_an_allowed_origin_passes_the_preflight(self, browser: httpx.AsyncClient) -> None:
        response = await browser.options("/v1/checkout", headers=preflight(ALLOWED))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in response.headers["access-control-allow-methods"]
        allowed_headers = response.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "idempotency-key"):
            assert header in allowed_headers
        assert response.headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in response.headers  # bearer keys, no cookies
        assert response.headers["x-request-id"]

    async def test_a_refused_origin_gets_no_grant_on_the_preflight(self, browser: httpx.AsyncClient) -> None:
        response = await browser.options("/v1/checkout", headers=preflight(REFUSED))
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "cors_refused")
        assert "origin" in error["message"]
        assert error["request_id"] == response.headers["x-request-id"]

    async def test_a_header_off_the_list_is_refused_on_the_preflight(
        self, browser: httpx.AsyncClient
    ) -> None:
        headers = preflight(ALLOWED) | {"Access-Control-Request-Headers": "x-forwarded-for"}
        response = await browser.options("/v1/checkout", headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "cors_refused")
        assert "headers" in response.json()["error"]["message"]

    async def test_a_simple_request_from_an_allowed_origin_is_granted(
        self, db: Database, browser: httpx.AsyncClient
    ) -> None:
        shop: Shop = await open_shop(db)
        response = await browser.get(
            "/v1/storefront/products", headers={"Origin": ALLOWED, **shop.publishable}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert "origin" in response.headers["vary"].lower()
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed and "retry-after" in exposed

    async def test_a_simple_request_from_a_refused_origin_gets_no_grant(
        self, db: Database, browser: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await browser.get(
            "/v1/storefront/products", headers={"Origin": REFUSED, **shop.publishable}
        )
        # The server answers (CORS is the browser's guard), but grants the page nothing to read.
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers

    async def test_without_an_allowlist_nothing_is_granted(self, client: httpx.AsyncClient) -> None:
        response = await client.options("/v1/checkout", headers=preflight(ALLOWED))
        assert "access-control-allow-origin" not in response.headers
