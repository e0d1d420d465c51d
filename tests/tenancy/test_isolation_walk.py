"""Every route in the OpenAPI document that names an object, called with tenant B's keys against
tenant A's objects: 404 or 403, never A's data, and A's objects unchanged afterwards. A route
added later is walked too — or this test fails until someone says which object it names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from paycore.app import create_app
from paycore.auth.models import KeyKind, KeyMode
from paycore.checkout.receipts import RECEIPT_HEADER
from paycore.config import Settings
from paycore.db import Database
from paycore.tenancy.models import Tenant
from tests.factories import make_api_key
from tests.flows.helpers import Shop, buy, cart_with, confirm, create_product, deliver, open_shop, order

SECRET_NAME = "Tenant A's walked widget"

# Routes that no tenant key opens, with why; everything else that names an object is walked.
NOT_TENANT_KEYED = {
    "/webhooks/{provider}/{tenant_slug}": "providers call it, verified by their signature",
    "/sandbox/pay/{attempt_id}": "the sandbox's customer page, reached by an unguessable id",
    "/sandbox/pay/{attempt_id}/confirm": "the sandbox's customer page, reached by an unguessable id",
}

# Routes whose path names the caller's own account (a provider), not an object of A's: B acting
# there touches B's account only. Any refusal will do; A's snapshot below proves A was untouched.
CALLERS_OWN = {"/v1/providers/{provider}": (400, 403, 404)}

# A valid body for each writing route, so the answer is about ownership, not about the body.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/products/{product_id}"): {"name": "Taken over"},
    ("PUT", "/v1/products/{product_id}/inventory"): {"on_hand": 0},
    ("PATCH", "/v1/carts/{cart_id}/items/{item_id}"): {"quantity": 2},
    ("POST", "/v1/carts/{cart_id}/items"): {"quantity": 1},  # product_id: A's, filled in below
    ("POST", "/v1/orders/{order_id}/refunds"): {"amount": 100},
    ("POST", "/v1/checkout/{order_id}/confirm"): {},
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"): {"previous_secret_valid_hours": 1},
    ("POST", "/v1/provisioning_targets/{target_id}/rotate_secret"): {"previous_secret_valid_hours": 1},
    ("PUT", "/v1/platform/tenants/{tenant_id}/subscription"): {"plan": "default", "status": "canceled"},
    ("PUT", "/v1/providers/{provider}"): {"webhook_secret": "whsec_taken_over_1234"},
}


@dataclass
class Holdings:
    shop: Shop
    values: dict[str, str]
    receipt: str


@pytest.fixture
async def tenant_a(db: Database, settings: Settings, client: httpx.AsyncClient) -> Holdings:
    shop = await open_shop(db)
    product = await create_product(client, shop, name=SECRET_NAME, price=4200, stock=10)
    cart_id = await cart_with(client, shop, (product["id"], 1))
    cart = (await client.get(f"/v1/carts/{cart_id}", headers=shop.publishable)).json()
    paid = await buy(client, shop, product["id"])
    await confirm(client, paid["payment"]["id"])
    await deliver(db, settings, client)
    detail = await order(client, shop, paid["order"]["id"])
    endpoint = await client.post(
        "/v1/webhook_endpoints", json={"url": "https://a.example.com/hooks"}, headers=shop.secret
    )
    target = await client.post(
        "/v1/provisioning_targets", json={"url": "https://a.example.com/provision"}, headers=shop.secret
    )
    assert target.status_code == 201, target.text
    stripe = await client.put(
        "/v1/providers/stripe",
        json={
            "credentials": {
                "secret_key": "sk_test_tenantAonly0123456789abcdef",
                "publishable_key": "pk_test_tenantAonly0123456789abcdef",
            },
            "webhook_secret": "whsec_tenant_a_only_1234",
        },
        headers=shop.secret,
    )
    recipient = await client.post(
        "/v1/test_email_recipients", json={"email": "qa@a.example"}, headers=shop.secret
    )
    assert (endpoint.status_code, stripe.status_code, recipient.status_code) == (201, 200, 201), (
        endpoint.text,
        stripe.text,
        recipient.text,
    )
    return Holdings(
        shop=shop,
        values={
            "product_id": product["id"],
            "cart_id": cart_id,
            "item_id": cart["items"][0]["id"],
            "order_id": paid["order"]["id"],
            "customer_id": detail["customer_id"],
            "endpoint_id": endpoint.json()["id"],
            "target_id": target.json()["id"],
            "recipient_id": recipient.json()["id"],
            "provider": "stripe",
            "tenant_id": shop.tenant_id,  # the platform API's: no tenant key opens it
            "code": "mc-small",  # a server template's, the platform API's too
        },
        receipt=paid["receipt_token"],
    )


def operations(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        for method in methods
        if "{" in path and path not in NOT_TENANT_KEYED
    )


async def snapshot(client: httpx.AsyncClient, a: Holdings) -> list[Any]:
    """What tenant A sees of its own objects, to compare after B's walk."""
    headers = a.shop.secret
    paths = [
        f"/v1/products/{a.values['product_id']}",
        f"/v1/products/{a.values['product_id']}/inventory",
        f"/v1/orders/{a.values['order_id']}",
        f"/v1/webhook_endpoints/{a.values['endpoint_id']}",
        f"/v1/provisioning_targets/{a.values['target_id']}",
        "/v1/providers/stripe",
    ]
    paths.append("/v1/test_email_recipients")
    seen = [(await client.get(path, headers=headers)).json() for path in paths]
    seen.append((await client.get(f"/v1/carts/{a.values['cart_id']}", headers=a.shop.publishable)).json())
    return seen


async def live_keys_of(db: Database, shop: Shop) -> Shop:
    async with db.session() as session:
        tenant = await session.get(Tenant, shop.tenant_id)
        assert tenant is not None
        secret = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        publishable = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE, kind=KeyKind.PUBLISHABLE)
    return Shop(
        tenant_id=shop.tenant_id,
        slug=shop.slug,
        secret={"Authorization": f"Bearer {secret.plaintext}"},
        publishable={"Authorization": f"Bearer {publishable.plaintext}"},
    )


@pytest.mark.parametrize("caller", ["another tenant", "the same tenant's live keys"])
async def test_no_other_key_reaches_tenant_a_s_test_objects(
    db: Database, settings: Settings, client: httpx.AsyncClient, tenant_a: Holdings, caller: str
) -> None:
    intruder = await open_shop(db) if caller == "another tenant" else await live_keys_of(db, tenant_a.shop)
    before = await snapshot(client, tenant_a)
    walked = operations(create_app(settings))
    assert len(walked) >= 20  # the walk really covers the API

    for method, path in walked:
        names = re.findall(r"{(\w+)}", path)
        unknown = [name for name in names if name not in tenant_a.values]
        assert not unknown, f"{method} {path}: say which of tenant A's objects {unknown} names"
        url = path.format(**tenant_a.values)
        body = BODIES.get((method, path))
        if body is not None and "items" in path and method == "POST":
            body = {**body, "product_id": tenant_a.values["product_id"]}
        for key_kind, headers in (("secret", intruder.secret), ("publishable", intruder.publishable)):
            response = await client.request(
                method, url, json=body, headers={**headers, RECEIPT_HEADER: tenant_a.receipt}
            )
            assert response.status_code in CALLERS_OWN.get(path, (403, 404)), (
                f"{method} {path} with {caller}'s {key_kind} key: {response.status_code} {response.text}"
            )
            assert SECRET_NAME not in response.text
            assert "tenantAonly" not in response.text

    assert await snapshot(client, tenant_a) == before
