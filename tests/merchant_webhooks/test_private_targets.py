"""Issue 11, finding 10: the SSRF guard was on only with PAYCORE_ENV=production, so on a
development instance (the default) a tenant could register http://169.254.169.254/… or any
internal URL, and read what it answered back as the attempt's excerpt or a `last_error`.

The probes, as the attacker ran them: register internal URLs, get deliveries sent there, read the
answers back through the API. Now the guard is on in every environment; only the explicit
development setting lets private targets through, and even then no answer's body is recorded."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import select

from paycore.app import create_app
from paycore.circuit import Breakers
from paycore.config import Settings, SettingsError, load_settings
from paycore.db import Database
from paycore.fulfillment.dispatch import FulfillmentDispatcher
from paycore.fulfillment.models import Fulfillment, FulfillmentStatus
from paycore.fulfillment.provisioners.registry import build_provisioners
from paycore.merchant_webhooks.delivery import MerchantWebhookChannel
from paycore.merchant_webhooks.models import WebhookEndpoint
from paycore.merchant_webhooks.signing import new_secret
from paycore.merchant_webhooks.targets import guarded_client
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.providers.registry import ProviderRegistry
from tests.conftest import make_settings
from tests.flows.helpers import Shop, buy, confirm, create_product, deliver, open_shop

# What an internal service answers: it must never come back to the tenant.
INTERNAL_BODY = "ami-id instance-id iam/security-credentials/paycore-role AKIAINTERNALSECRET"
INTERNAL_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hook",
    "http://localhost:6379/",
    "http://[::1]:5432/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
]
RESOURCES = ["/v1/webhook_endpoints", "/v1/provisioning_targets"]


class InternalService:
    """Something on paycore's own network (a metadata service, an admin port): answers 500 with a
    body full of secrets to anyone who asks, and counts who asked."""

    def __init__(self) -> None:
        self.requests = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                service.requests += 1
                body = INTERNAL_BODY.encode()
                self.send_response(500)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def internal() -> Iterator[InternalService]:
    service = InternalService()
    thread = threading.Thread(target=service.server.serve_forever, daemon=True)
    thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()


def development(database_url: str, **overrides: Any) -> Settings:
    """Settings as a developer's instance has them: PAYCORE_ENV left at its default."""
    return make_settings(env="development", database_url=database_url, **overrides)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return development(settings.database_url, fulfillment_max_attempts=1)


@pytest.fixture
def allowed(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_private_targets": True})


@asynccontextmanager
async def api(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, database=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as http:
        yield http


async def deliver_merchant_webhooks(db: Database, settings: Settings) -> None:
    """The worker's merchant-webhook queue, with the client it really uses (no fake transport)."""
    async with guarded_client(settings, timeout=5) as http:
        channel = MerchantWebhookChannel(settings, db, http)
        work = OutboxDispatcher(db, {OutboxChannel.MERCHANT_WEBHOOK: channel}, settings, worker_id="w")
        for _ in range(5):
            if not await work.process_batch(asyncio.Event()):
                return


async def provision(db: Database, settings: Settings) -> None:
    """The worker's provisioning queue, with the clients it really uses."""
    async with httpx.AsyncClient() as plain, guarded_client(settings, timeout=5) as merchant:
        worker = FulfillmentDispatcher(
            db,
            build_provisioners(settings, db, plain, merchant),
            Breakers(failure_threshold=5, reset_seconds=30),
            settings,
            providers=ProviderRegistry({}),
            worker_id="w",
        )
        await worker.process_batch(asyncio.Event())


async def paid_order(client: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop) -> None:
    product = await create_product(client, shop)
    bought = await buy(client, shop, product["id"])
    await confirm(client, bought["payment"]["id"])
    await deliver(db, settings, client)


async def paid_provisioning(
    client: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop, target_id: str
) -> None:
    created = await client.post(
        "/v1/products",
        json={
            "name": "Server",
            "price": 1500,
            "currency": "EUR",
            "kind": "service",
            "fulfillment": {"type": "provision", "config": {"provisioner": "http", "target": target_id}},
        },
        headers=shop.secret,
    )
    assert created.status_code == 201, created.text
    bought = await buy(client, shop, created.json()["id"])
    await confirm(client, bought["payment"]["id"])
    await deliver(db, settings, client)


async def everything_the_tenant_can_read(client: httpx.AsyncClient, shop: Shop) -> str:
    """Every answer the tenant's key can get about its endpoints, targets and their attempts."""
    seen = []
    for resource in RESOURCES:
        listed = (await client.get(resource, headers=shop.secret)).json()
        seen.append(listed)
        for item in listed["data"]:
            if resource == "/v1/webhook_endpoints":
                seen.append(
                    (await client.get(f"{resource}/{item['id']}/attempts", headers=shop.secret)).json()
                )
    return json.dumps(seen)


async def recorded_errors(db: Database) -> str:
    """Every `last_error` and payload paycore recorded, including what goes to the tenant."""
    async with db.session(write=False) as session:
        messages = list(await session.scalars(select(OutboxMessage)))
        fulfillments = list(await session.scalars(select(Fulfillment)))
    return json.dumps(
        [(m.last_error, m.payload) for m in messages] + [f.last_error for f in fulfillments], default=str
    )


class TestDevelopmentDefaults:
    @pytest.mark.parametrize("resource", RESOURCES)
    @pytest.mark.parametrize("url", INTERNAL_URLS)
    async def test_registering_an_internal_url_is_refused(
        self, db: Database, client: httpx.AsyncClient, resource: str, url: str
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(resource, json={"url": url}, headers=shop.secret)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("validation_error", "url")
        assert "internal address" in error["message"]
        assert (await client.get(resource, headers=shop.secret)).json()["data"] == []  # nothing written

    async def test_a_stored_internal_endpoint_is_not_called(
        self,
        db: Database,
        settings: Settings,
        client: httpx.AsyncClient,
        internal: InternalService,
    ) -> None:
        shop = await open_shop(db)
        async with db.session() as session:  # stored before the guard (or while DNS said otherwise)
            session.add(
                WebhookEndpoint(
                    tenant_id=shop.tenant_id, livemode=False, url=internal.url, secret=new_secret()
                )
            )
        await paid_order(client, db, settings, shop)
        await deliver_merchant_webhooks(db, settings)

        assert internal.requests == 0
        readable = await everything_the_tenant_can_read(client, shop)
        assert "internal address" in readable  # the attempt says why, and nothing more
        assert INTERNAL_BODY not in readable
        assert INTERNAL_BODY not in await recorded_errors(db)

    async def test_a_provisioning_target_leading_inside_is_not_called(
        self,
        db: Database,
        settings: Settings,
        allowed: Settings,
        client: httpx.AsyncClient,
        internal: InternalService,
    ) -> None:
        shop = await open_shop(db)
        async with api(db, allowed) as permissive:  # registered where the setting was on
            created = await permissive.post(
                "/v1/provisioning_targets", json={"url": internal.url}, headers=shop.secret
            )
        assert created.status_code == 201, created.text
        await paid_provisioning(client, db, settings, shop, created.json()["id"])
        await provision(db, settings)

        assert internal.requests == 0
        async with db.session(write=False) as session:
            (row,) = await session.scalars(select(Fulfillment))
        assert row.status is FulfillmentStatus.NEEDS_ATTENTION
        assert row.last_error == "127.0.0.1 resolves to an internal address; paycore does not call those"
        assert INTERNAL_BODY not in await recorded_errors(db)


class TestTheExplicitDevelopmentSetting:
    async def test_lets_private_targets_through_but_keeps_no_body(
        self, db: Database, allowed: Settings, internal: InternalService
    ) -> None:
        shop = await open_shop(db)
        async with api(db, allowed) as client:
            endpoint = await client.post(
                "/v1/webhook_endpoints",
                json={"url": internal.url, "events": ["order.paid"]},
                headers=shop.secret,
            )
            assert endpoint.status_code == 201, endpoint.text
            await paid_order(client, db, allowed, shop)
            await deliver_merchant_webhooks(db, allowed)

            assert internal.requests == 1
            attempts = (
                await client.get(
                    f"/v1/webhook_endpoints/{endpoint.json()['id']}/attempts", headers=shop.secret
                )
            ).json()["data"]
            assert [(a["status_code"], a["error"], a["response_excerpt"]) for a in attempts] == [
                (500, "HTTP 500", None)
            ]
            assert INTERNAL_BODY not in await everything_the_tenant_can_read(client, shop)
        assert INTERNAL_BODY not in await recorded_errors(db)

    async def test_a_provisioning_answer_is_recorded_as_its_status_only(
        self, db: Database, allowed: Settings, internal: InternalService
    ) -> None:
        shop = await open_shop(db)
        async with api(db, allowed) as client:
            target = await client.post(
                "/v1/provisioning_targets", json={"url": internal.url}, headers=shop.secret
            )
            assert target.status_code == 201, target.text
            await paid_provisioning(client, db, allowed, shop, target.json()["id"])
        await provision(db, allowed)

        assert internal.requests == 1
        async with db.session(write=False) as session:
            (row,) = await session.scalars(select(Fulfillment))
            (failed,) = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "fulfillment.failed")
            )
        assert (row.status, row.last_error) == (FulfillmentStatus.NEEDS_ATTENTION, "HTTP 500")
        assert failed.payload["data"]["object"]["error"] == "HTTP 500"  # what the tenant is sent
        assert INTERNAL_BODY not in await recorded_errors(db)

    async def test_is_named_loudly_at_start_up(
        self, db: Database, settings: Settings, allowed: Settings
    ) -> None:
        for given, warned in ((settings, False), (allowed, True)):
            app = create_app(given, database=db)
            with structlog.testing.capture_logs() as logs:
                async with app.router.lifespan_context(app):
                    pass
            warnings = [
                entry
                for entry in logs
                if entry["event"] == "private_targets_allowed" and entry["log_level"] == "warning"
            ]
            assert bool(warnings) is warned
            if warned:
                assert warnings[0]["setting"] == "PAYCORE_ALLOW_PRIVATE_TARGETS"


class TestProduction:
    def test_refuses_the_setting(self) -> None:
        with pytest.raises(SettingsError) as refused:
            load_settings(
                _env_file=None,
                env="production",
                checkout_token_secret="k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ",
                allow_private_targets=True,
            )
        (problem,) = refused.value.problems
        assert problem.startswith("PAYCORE_ALLOW_PRIVATE_TARGETS: may not be true in production")
