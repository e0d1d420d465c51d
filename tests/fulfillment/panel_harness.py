"""A tenant selling servers on the operator's Pterodactyl panel, driven through paycore's HTTP API:
the operator (a platform key) defines a template and a plan, the tenant sells in live mode through
Razorpay (a fake of its API) with a webhook secret it chose itself, and the worker's
FulfillmentDispatcher provisions on a fake panel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from paycore.audit.service import Actor
from paycore.auth.models import KeyKind, KeyMode
from paycore.circuit import Breakers
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.fulfillment.dispatch import FulfillmentDispatcher
from paycore.fulfillment.models import Fulfillment
from paycore.fulfillment.provisioners.registry import build_provisioners
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.providers.registry import ProviderRegistry
from paycore.platform.service import create_platform_key
from paycore.server_templates.service import template_feature
from tests.conftest import make_settings
from tests.factories import make_api_key, make_tenant
from tests.flows.helpers import Shop
from tests.fulfillment.fakes import PANEL_KEY, PANEL_URL, FakePanel, fake_http
from tests.providers.razorpay.fake import HOST, FakeRazorpay
from tests.providers.support import HostRouter, api_client, registry_with

MAX_ATTEMPTS = 3
# The tenant chose this secret itself: what it signs proves nothing to the operator.
TENANT_CHOSEN_SECRET = "whsec_chosen_by_the_tenant_01"
TEMPLATE_CODE = "mc-small"
TEMPLATE_SPEC: dict[str, Any] = {
    "user": 7,
    "egg": 5,
    "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
    "startup": "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}",
    "environment": {"SERVER_JARFILE": "server.jar", "MAX_PLAYERS": 20, "VERSION": "1.20.4"},
    "limits": {"memory": 2048, "swap": 0, "disk": 10240, "io": 500, "cpu": 200},
    "feature_limits": {"databases": 1, "allocations": 1, "backups": 2},
    "deploy": {"locations": [1], "dedicated_ip": False, "port_range": []},
}
TEMPLATE: dict[str, Any] = {
    "code": TEMPLATE_CODE,
    "name": "Minecraft, small",
    "spec": TEMPLATE_SPEC,
    "variables": {
        "memory": {"target": "limits", "type": "integer", "min": 1024, "max": 4096},
        "MAX_PLAYERS": {"type": "integer", "min": 1, "max": 50},
        "VERSION": {"type": "string", "allowed": ["1.20.4", "1.21"]},
    },
}
# What the probe's product asked the operator's panel for.
MINER_SPEC: dict[str, Any] = {
    "user": 1,
    "egg": 5,
    "docker_image": "ghcr.io/mallory/miner",
    "startup": "./mine --pool evil.example",
    "environment": {},
    "limits": {"memory": 65536, "swap": 0, "disk": 10240, "io": 500, "cpu": 0},
    "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
    "deploy": {"locations": [1], "dedicated_ip": False, "port_range": []},
    "oom_disabled": True,
    "skip_scripts": True,
}


def server_config(**variables: Any) -> dict[str, Any]:
    return {"provisioner": "pterodactyl", "template": TEMPLATE_CODE, "variables": variables}


def panel_settings(database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        pterodactyl_url=PANEL_URL,
        pterodactyl_api_key=PANEL_KEY,
        fulfillment_max_attempts=MAX_ATTEMPTS,
    )


async def platform_headers(db: Database) -> dict[str, str]:
    async with db.session() as session:
        created = await create_platform_key(session, name="operator", actor=Actor(name="test:operator"))
    return {"Authorization": f"Bearer {created.plaintext}"}


async def keyed_shop(db: Database, mode: KeyMode) -> Shop:
    async with db.session() as session:
        tenant = await make_tenant(session)
        secret = await make_api_key(session, tenant=tenant, mode=mode)
        publishable = await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE, mode=mode)
    return Shop(
        tenant_id=tenant.id,
        slug=tenant.slug,
        secret={"Authorization": f"Bearer {secret.plaintext}"},
        publishable={"Authorization": f"Bearer {publishable.plaintext}"},
    )


@dataclass
class Bought:
    order_id: str
    number: str
    razorpay_order_id: str


@dataclass
class PanelHarness:
    db: Database
    settings: Settings
    http: httpx.AsyncClient
    registry: ProviderRegistry
    razorpay: FakeRazorpay
    panel: FakePanel
    platform: dict[str, str]
    shop: Shop

    # --- the operator --------------------------------------------------------------------

    async def define_template(self) -> None:
        response = await self.http.post("/v1/platform/server-templates", json=TEMPLATE, headers=self.platform)
        assert response.status_code == 201, response.text

    async def put_on_plan(self, code: str, *, features: list[str] | None = None, **quotas: int) -> None:
        plan = {
            "code": code,
            "name": code,
            "features": [template_feature(TEMPLATE_CODE)] if features is None else features,
            **quotas,
        }
        created = await self.http.post("/v1/platform/plans", json=plan, headers=self.platform)
        assert created.status_code == 201, created.text
        subscribed = await self.http.put(
            f"/v1/platform/tenants/{self.shop.tenant_id}/subscription",
            json={"plan": code},
            headers=self.platform,
        )
        assert subscribed.status_code == 200, subscribed.text

    # --- the tenant ----------------------------------------------------------------------

    async def create_product(self, config: dict[str, Any], *, price: int = 49900) -> httpx.Response:
        return await self.http.post(
            "/v1/products",
            json={
                "name": "Game server",
                "price": price,
                "currency": "INR",
                "kind": "service",
                "fulfillment": {"type": "provision", "config": config},
            },
            headers=self.shop.secret,
        )

    async def product(self, config: dict[str, Any]) -> str:
        response = await self.create_product(config)
        assert response.status_code == 201, response.text
        product_id: str = response.json()["id"]
        return product_id

    async def buy(self, product_id: str) -> Bought:
        cart = await self.http.post(
            "/v1/carts",
            json={"items": [{"product_id": product_id, "quantity": 1}]},
            headers=self.shop.publishable,
        )
        assert cart.status_code == 201, cart.text
        response = await self.http.post(
            "/v1/checkout",
            json={
                "cart_id": cart.json()["id"],
                "customer": {"email": "ada@example.com", "name": "Ada"},
                "provider": "razorpay",
            },
            headers=self.shop.publishable,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Bought(
            body["order"]["id"], body["order"]["number"], body["payment"]["client_data"]["razorpay_order_id"]
        )

    async def self_signed_capture(self, bought: Bought) -> dict[str, Any]:
        """The probe: the payment is only authorized at Razorpay, and the tenant signs a
        `payment.captured` for it with the webhook secret it chose. Returns the payment."""
        payment = self.razorpay.pay(bought.razorpay_order_id, status="authorized")
        claimed = {**payment, "status": "captured", "captured": True}
        await self.webhook(claimed)
        return payment

    async def paid_for_real(self, bought: Bought) -> dict[str, Any]:
        payment = self.razorpay.pay(bought.razorpay_order_id)
        await self.webhook(payment)
        return payment

    async def webhook(self, payment: dict[str, Any]) -> None:
        body, headers = self.razorpay.webhook(
            "payment.captured", secret=TENANT_CHOSEN_SECRET, payment=payment
        )
        response = await self.http.post(f"/webhooks/razorpay/{self.shop.slug}", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "applied"

    async def order_status(self, order_id: str) -> str:
        response = await self.http.get(f"/v1/orders/{order_id}", headers=self.shop.secret)
        assert response.status_code == 200, response.text
        status: str = response.json()["status"]
        return status

    # --- the worker ----------------------------------------------------------------------

    async def run_worker(self, registry: ProviderRegistry | None = None) -> int:
        async with fake_http(self.panel) as panel_http:
            worker = FulfillmentDispatcher(
                self.db,
                build_provisioners(self.settings, self.db, panel_http),
                Breakers(failure_threshold=5, reset_seconds=30),
                self.settings,
                providers=registry or self.registry,
                worker_id="worker-test",
            )
            return await worker.process_batch(asyncio.Event())

    async def fulfillment(self, order_id: str) -> Fulfillment:
        async with self.db.session(write=False) as session:
            return (await session.scalars(select(Fulfillment).where(Fulfillment.order_id == order_id))).one()

    async def make_due(self, order_id: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(Fulfillment).where(Fulfillment.order_id == order_id).values(next_attempt_at=utcnow())
            )

    async def ops_alerts(self) -> list[OutboxMessage]:
        async with self.db.session(write=False) as session:
            return list(
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.tenant_id == self.shop.tenant_id,
                        OutboxMessage.channel == OutboxChannel.OPS_ALERT,
                    )
                )
            )


async def _allow_live_on_sqlite(database: Database) -> None:
    """Live checkout is refused on SQLite by the durability gate (tested on its own); these tests
    are about what happens after a live payment, so on SQLite only, the gate is opened."""


@asynccontextmanager
async def panel_harness(
    db: Database, monkeypatch: pytest.MonkeyPatch, *, mode: KeyMode = KeyMode.LIVE
) -> AsyncIterator[PanelHarness]:
    if db.dialect_name == "sqlite":
        monkeypatch.setattr("paycore.checkout.service.require_durable_database", _allow_live_on_sqlite)
    settings = panel_settings(db.engine.url.render_as_string(hide_password=False))
    livemode = mode is KeyMode.LIVE
    razorpay = FakeRazorpay(key_id="rzp_live_FakeKey0001" if livemode else "rzp_test_FakeKey0001")
    async with api_client(db, settings, HostRouter({HOST: razorpay.app})) as (http, registry):
        shop = await keyed_shop(db, mode)
        credentials = await http.put(
            "/v1/providers/razorpay",
            json={
                "credentials": {"key_id": razorpay.key_id, "key_secret": razorpay.key_secret},
                "webhook_secret": TENANT_CHOSEN_SECRET,
            },
            headers=shop.secret,
        )
        assert credentials.status_code == 200, credentials.text
        harness = PanelHarness(
            db, settings, http, registry, razorpay, FakePanel(), await platform_headers(db), shop
        )
        await harness.define_template()
        yield harness


def unreachable_registry(harness: PanelHarness) -> ProviderRegistry:
    """Providers whose every call fails to connect: Razorpay cannot be asked."""
    return registry_with(harness.settings, harness.db, HostRouter({}))
