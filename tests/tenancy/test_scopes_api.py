"""Every merchant route needs its scope: reads `read`, writes `write`, refunds `refunds`, the ops
summary `ops`. Walks the OpenAPI document, so a route added later is checked without anyone listing it."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from paycore.db import Database
from tests.factories import make_api_key, make_tenant

# Routes a merchant's secret key is not what guards: storefront, providers, the sandbox, probes.
NOT_MERCHANT = re.compile(
    r"^/(v1/(storefront|carts|checkout)|webhooks/|sandbox/|health|ready|metrics|docs|openapi)"
)


def merchant_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document outside the storefront, provider and probe routes."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if not NOT_MERCHANT.match(path)
        for method in operations
    ]


def needed_scope(method: str, path: str) -> str:
    if path == "/ops/summary":
        return "ops"
    if path.endswith("/refunds") and method == "POST":
        return "refunds"
    return "read" if method == "GET" else "write"


async def key_with(db: Database, scopes: list[str]) -> dict[str, str]:
    async with db.session() as session:
        tenant = await make_tenant(session)
        created = await make_api_key(session, tenant=tenant, scopes=scopes)
    return {"Authorization": f"Bearer {created.plaintext}"}


@pytest.fixture
def app(client: httpx.AsyncClient) -> FastAPI:
    application: FastAPI = client._transport.app  # type: ignore[attr-defined]
    return application


class TestScopes:
    async def test_the_walk_covers_the_merchant_api(self, app: FastAPI) -> None:
        routes = merchant_routes(app)
        assert ("POST", "/v1/products") in routes
        assert ("POST", "/v1/orders/{order_id}/refunds") in routes
        assert ("GET", "/ops/summary") in routes
        assert len(routes) >= 25

    @pytest.mark.parametrize("scope", ["read", "write", "refunds", "ops"])
    async def test_a_key_without_the_scope_is_refused_on_every_route_that_needs_it(
        self, db: Database, client: httpx.AsyncClient, app: FastAPI, scope: str
    ) -> None:
        others = [name for name in ("read", "write", "refunds", "ops") if name != scope]
        headers = await key_with(db, others)
        checked = 0
        for method, path in merchant_routes(app):
            if needed_scope(method, path) != scope:
                continue
            url = re.sub(r"\{[^}]+\}", "x_missing", path)
            response = await client.request(method, url, headers=headers, json={})
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "insufficient_scope", (method, path)
            checked += 1
        assert checked > 0

    async def test_a_dashboard_key_can_look_but_not_touch(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        headers = await key_with(db, ["read", "ops"])
        assert (await client.get("/v1/products", headers=headers)).status_code == 200
        assert (await client.get("/ops/summary", headers=headers)).status_code == 200
        created = await client.post(
            "/v1/products",
            json={"name": "X", "price": 1, "currency": "EUR", "kind": "digital"},
            headers=headers,
        )
        assert created.status_code == 403
