"""Issue 11, finding 5: every tenant's provisioning calls were signed with the one deployment-wide
PAYCORE_PROVISIONER_SECRET, sent to whatever URL a product named — so tenant B could point a
product at tenant A's provisioning endpoint and have paycore sign B's calls with a secret A's
endpoint trusts. Now each tenant target has its own secret (shown once, rotatable, sealed), a
product names a target of its own tenant by id, and the secret of A's target signs A's calls only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paycore.app import create_app
from paycore.auth.models import KeyMode
from paycore.catalog.models import Product
from paycore.circuit import Breakers
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.fulfillment.dispatch import FulfillmentDispatcher
from paycore.fulfillment.models import Fulfillment, FulfillmentStatus
from paycore.fulfillment.provisioners.registry import build_provisioners
from paycore.idempotency.models import IdempotencyKey
from paycore.payments.providers.registry import ProviderRegistry
from paycore.provisioning_targets.models import ProvisioningTarget
from paycore.provisioning_targets.service import reseal_targets, signing_target
from paycore.secrets_box import SealError, new_key_line
from paycore.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.factories import make_api_key
from tests.flows.helpers import Shop, buy, confirm, deliver, open_shop

URL = "https://provisioning.example/hook"


class SharedProvisioningHost:
    """One provisioning service that two tenants both use (a hosting company's API, say): it
    holds each tenant's secret and says whose signature a call carries."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.webhooks = {owner: Webhook(secret) for owner, secret in secrets.items()}
        self.calls: list[tuple[str, list[str]]] = []  # (tenant named in the body, who signed it)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        signed_by = []
        for owner, webhook in self.webhooks.items():
            try:
                webhook.verify(request.content, dict(request.headers))
                signed_by.append(owner)
            except WebhookVerificationError:
                pass
        self.calls.append((json.loads(request.content)["data"]["tenant"], signed_by))
        if not signed_by:
            return httpx.Response(401)
        return httpx.Response(200, json={"external_ref": f"srv_{len(self.calls)}"})


async def add_target(client: httpx.AsyncClient, shop: Shop, url: str = URL) -> dict[str, Any]:
    created = await client.post(
        "/v1/provisioning_targets", json={"url": url, "description": "servers"}, headers=shop.secret
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def provisioned(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "Server",
        "price": 1500,
        "currency": "EUR",
        "kind": "service",
        "fulfillment": {"type": "provision", "config": config},
    }


async def product_for(client: httpx.AsyncClient, shop: Shop, target_id: str) -> str:
    created = await client.post(
        "/v1/products", json=provisioned({"provisioner": "http", "target": target_id}), headers=shop.secret
    )
    assert created.status_code == 201, created.text
    product_id: str = created.json()["id"]
    return product_id


async def pay_for(
    client: httpx.AsyncClient, db: Database, settings: Settings, shop: Shop, product_id: str
) -> None:
    bought = await buy(client, shop, product_id)
    await confirm(client, bought["payment"]["id"])
    await deliver(db, settings, client)


async def provision(db: Database, settings: Settings, host: SharedProvisioningHost) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        worker = FulfillmentDispatcher(
            db,
            build_provisioners(settings, db, http),
            Breakers(failure_threshold=5, reset_seconds=30),
            settings,
            providers=ProviderRegistry({}),
            worker_id="w",
        )
        await worker.process_batch(asyncio.Event())


async def fulfillments(db: Database, tenant_id: str) -> list[Fulfillment]:
    async with db.session(write=False) as session:
        return list(await session.scalars(select(Fulfillment).where(Fulfillment.tenant_id == tenant_id)))


class TestTheResource:
    async def test_the_secret_is_shown_once_and_sealed_at_rest(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        created = await add_target(client, shop)
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert (created["object"], created["url"], created["livemode"]) == ("provisioning_target", URL, False)

        read = await client.get(f"/v1/provisioning_targets/{created['id']}", headers=shop.secret)
        listed = await client.get("/v1/provisioning_targets", headers=shop.secret)
        assert read.json()["secret"] is None
        assert [(t["id"], t["secret"]) for t in listed.json()["data"]] == [(created["id"], None)]
        async with db.session(write=False) as session:
            row = await session.get(ProvisioningTarget, created["id"])
            assert row is not None
            stored = json.dumps(
                [getattr(row, column.key) for column in ProvisioningTarget.__table__.columns], default=str
            )
        assert secret not in stored
        assert secret.removeprefix("whsec_") not in stored

    async def test_an_idempotent_replay_does_not_keep_the_secret_in_the_clear(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        headers = {**shop.secret, "Idempotency-Key": "make-target-1"}
        first = await client.post("/v1/provisioning_targets", json={"url": URL}, headers=headers)
        again = await client.post("/v1/provisioning_targets", json={"url": URL}, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        # The same key gets the same answer (a client that lost it is not left without the
        # secret), while the saved answer is sealed at rest.
        assert again.json() == first.json()
        async with db.session(write=False) as session:
            kept = list(await session.scalars(select(IdempotencyKey.response_body)))
        assert kept
        assert first.json()["secret"] not in json.dumps(kept)

    async def test_rotation_shows_the_new_secret_once(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        created = await add_target(client, shop)
        rotated = await client.post(
            f"/v1/provisioning_targets/{created['id']}/rotate_secret", json={}, headers=shop.secret
        )
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["secret"].startswith("whsec_")
        assert rotated.json()["secret"] != created["secret"]
        assert rotated.json()["previous_secret_expires_at"] is not None
        read = await client.get(f"/v1/provisioning_targets/{created['id']}", headers=shop.secret)
        assert read.json()["secret"] is None

    async def test_secrets_reseal_under_a_new_key(self, db: Database, settings: Settings) -> None:
        shop = await open_shop(db)
        old_key, new_key = new_key_line("old"), new_key_line("new")
        before = make_settings(database_url=settings.database_url, secrets_key=old_key)
        transport = httpx.ASGITransport(app=create_app(before, database=db))
        async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as api:
            created = await add_target(api, shop)
            rotated = await api.post(
                f"/v1/provisioning_targets/{created['id']}/rotate_secret", json={}, headers=shop.secret
            )
        secrets = [rotated.json()["secret"], created["secret"]]
        only_new = make_settings(database_url=settings.database_url, secrets_key=new_key)
        found = {"tenant_id": shop.tenant_id, "livemode": False, "target_id": created["id"], "now": utcnow()}
        async with db.session() as session:
            with pytest.raises(SealError):
                await signing_target(session, only_new, **found)
            both = make_settings(database_url=settings.database_url, secrets_key=f"{new_key},{old_key}")
            assert await reseal_targets(session, both) == 1
            assert await reseal_targets(session, both) == 0
            opened = await signing_target(session, only_new, **found)
        assert opened is not None
        assert (opened.url, opened.secrets) == (URL, secrets)

    async def test_delete_hides_it(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        created = await add_target(client, shop)
        deleted = await client.delete(f"/v1/provisioning_targets/{created['id']}", headers=shop.secret)
        assert deleted.status_code == 200
        gone = await client.get(f"/v1/provisioning_targets/{created['id']}", headers=shop.secret)
        assert gone.status_code == 404
        assert (await client.get("/v1/provisioning_targets", headers=shop.secret)).json()["data"] == []

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"url": "ftp://provisioning.example/x"}, "url"),
            ({"url": "https://user:pw@provisioning.example/x"}, "url"),
            ({"url": URL, "secret": "whsec_mine"}, "secret"),
        ],
    )
    async def test_bad_input_is_refused(
        self, db: Database, client: httpx.AsyncClient, body: dict[str, Any], param: str
    ) -> None:
        shop = await open_shop(db)
        response = await client.post("/v1/provisioning_targets", json=body, headers=shop.secret)
        assert (response.status_code, response.json()["error"]["param"]) == (422, param)
        assert (await client.get("/v1/provisioning_targets", headers=shop.secret)).json()["data"] == []


class TestProductsNameTheirOwnTarget:
    async def test_a_raw_url_is_refused(self, db: Database, client: httpx.AsyncClient) -> None:
        """The old probe: a product whose provisioning goes to any URL, signed by paycore."""
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products", json=provisioned({"provisioner": "http", "url": URL}), headers=shop.secret
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["param"] == "fulfillment.config.url"
        assert (await client.get("/v1/products", headers=shop.secret)).json()["data"] == []

    async def test_a_provisioning_without_a_target_is_refused(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post("/v1/products", json=provisioned({"plan": "small"}), headers=shop.secret)
        assert (response.status_code, response.json()["error"]["param"]) == (422, "fulfillment.config.target")

    async def test_another_tenants_target_is_not_found(self, db: Database, client: httpx.AsyncClient) -> None:
        a, b = await open_shop(db), await open_shop(db)
        a_target = await add_target(client, a)
        created = await client.post(
            "/v1/products",
            json=provisioned({"provisioner": "http", "target": a_target["id"]}),
            headers=b.secret,
        )
        assert created.status_code == 404, created.text
        assert created.json()["error"]["param"] == "fulfillment.config.target"
        own = await product_for(client, b, (await add_target(client, b))["id"])
        patched = await client.patch(
            f"/v1/products/{own}",
            json={"fulfillment": {"type": "provision", "config": {"target": a_target["id"]}}},
            headers=b.secret,
        )
        assert patched.status_code == 404, patched.text
        product = (await client.get(f"/v1/products/{own}", headers=b.secret)).json()
        assert product["fulfillment"]["config"]["target"] != a_target["id"]


class TestSigning:
    async def test_each_tenants_calls_carry_its_own_secret_only(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        a, b = await open_shop(db), await open_shop(db)
        a_target, b_target = await add_target(client, a), await add_target(client, b)  # the same URL
        host = SharedProvisioningHost({"a": a_target["secret"], "b": b_target["secret"]})
        await pay_for(client, db, settings, a, await product_for(client, a, a_target["id"]))
        await pay_for(client, db, settings, b, await product_for(client, b, b_target["id"]))
        await provision(db, settings, host)

        assert sorted(host.calls) == sorted([(a.tenant_id, ["a"]), (b.tenant_id, ["b"])])
        for shop in (a, b):
            (row,) = await fulfillments(db, shop.tenant_id)
            assert row.status is FulfillmentStatus.SUCCEEDED

    async def test_a_product_pointed_at_another_tenants_target_sends_nothing(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        """B's product is made to name A's target behind the API's back (a row written before
        this check, or by a bug elsewhere): A's secret still never signs B's call."""
        a, b = await open_shop(db), await open_shop(db)
        a_target, b_target = await add_target(client, a), await add_target(client, b)
        b_product = await product_for(client, b, b_target["id"])
        hijacked = {"type": "provision", "config": {"provisioner": "http", "target": a_target["id"]}}
        async with db.session() as session:
            await session.execute(update(Product).where(Product.id == b_product).values(fulfillment=hijacked))
        await pay_for(client, db, settings, b, b_product)
        host = SharedProvisioningHost({"a": a_target["secret"]})
        await provision(db, settings, host)

        assert host.calls == []
        (row,) = await fulfillments(db, b.tenant_id)
        assert row.status is FulfillmentStatus.RETRYING
        assert row.last_error == f"no provisioning target {a_target['id']} (deleted, or not this tenant's)"

    async def test_a_live_key_cannot_use_a_test_target(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        test_target = await add_target(client, shop)
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            live = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        headers = {"Authorization": f"Bearer {live.plaintext}"}
        read = await client.get(f"/v1/provisioning_targets/{test_target['id']}", headers=headers)
        assert read.status_code == 404
        created = await client.post(
            "/v1/products",
            json=provisioned({"provisioner": "http", "target": test_target["id"]}),
            headers=headers,
        )
        assert created.status_code == 404, created.text
