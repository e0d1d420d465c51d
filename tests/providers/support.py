"""Shared by the provider tests: route the adapters' HTTP calls to local fakes of the providers'
APIs (small ASGI apps written from their documented APIs), and drive paycore's API with a
registry that uses them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database
from paycore.payments.providers.registry import ProviderRegistry, breakers_for, build_registry
from tests.flows.helpers import Shop


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each request to the fake app serving its host; an unknown host cannot be reached."""

    def __init__(self, apps: Mapping[str, Any]) -> None:
        self._transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transports.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no fake serves {request.url.host}", request=request)
        return await transport.handle_async_request(request)


def registry_with(settings: Settings, db: Database, transport: httpx.AsyncBaseTransport) -> ProviderRegistry:
    return build_registry(settings, db, breakers_for(settings), http_transport=transport)


@asynccontextmanager
async def api_client(
    db: Database, settings: Settings, transport: httpx.AsyncBaseTransport
) -> AsyncIterator[tuple[httpx.AsyncClient, ProviderRegistry]]:
    """paycore's HTTP API, its providers talking to the fakes behind `transport`."""
    app = create_app(settings, database=db)
    registry = registry_with(settings, db, transport)
    app.state.providers = registry
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://paycore.test"
    ) as http:
        try:
            yield http, registry
        finally:
            await registry.aclose()


async def set_provider(
    client: httpx.AsyncClient,
    shop: Shop,
    provider: str,
    credentials: dict[str, Any],
    *,
    webhook_secret: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"credentials": credentials}
    if webhook_secret is not None:
        body["webhook_secret"] = webhook_secret
    response = await client.put(f"/v1/providers/{provider}", json=body, headers=shop.secret)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
