"""A saved answer is replayed only to the API key that made the request, and only after the
route's own key checks; the answer is sealed at rest (issue 11, findings 2 and 11).

The probes are the attacker's: a publishable key or a read-only secret key of the same tenant
sends the merchant's Idempotency-Key with the merchant's body, hoping for the saved 201 that holds
a webhook endpoint's `whsec_…` secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import text
from starlette.routing import BaseRoute

from paycore.app import create_app
from paycore.auth.dependencies import authenticate, require_any_key, require_secret_key, require_storefront
from paycore.auth.models import KeyKind, Scope
from paycore.config import Settings
from paycore.db import Database
from paycore.dependencies import _read_session, _write_session
from paycore.idempotency.models import IdempotencyKey
from paycore.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.factories import make_api_key
from tests.flows.helpers import Shop, open_shop

REPLAYED = "Idempotent-Replayed"
SAVED_ANSWERS = IdempotencyKey.__tablename__
ENDPOINT = {"url": "https://merchant.example/hooks", "events": ["order.paid"]}


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def another_key(db: Database, shop: Shop, *, kind: KeyKind, scopes: list[str]) -> dict[str, str]:
    async with db.session() as session:
        tenant = await session.get(Tenant, shop.tenant_id)
        assert tenant is not None
        created = await make_api_key(session, tenant=tenant, kind=kind, scopes=scopes)
    return {"Authorization": f"Bearer {created.plaintext}"}


async def post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str], key: str
) -> httpx.Response:
    return await client.post(path, json=body, headers={**headers, "Idempotency-Key": key})


async def endpoint_count(db: Database, tenant_id: str) -> int:
    async with db.session(write=False) as session:
        count = await session.scalar(
            text("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = :tenant"), {"tenant": tenant_id}
        )
    return int(count or 0)


def assert_refused_without_secret(response: httpx.Response, status: int, code: str) -> None:
    assert "whsec_" not in response.text
    assert REPLAYED not in response.headers
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


class TestAuthorizationBeforeReplay:
    async def test_a_publishable_key_replaying_the_merchants_key_is_refused(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        created = await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-1")
        assert created.status_code == 201, created.text
        assert created.json()["secret"].startswith("whsec_")

        probe = await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.publishable, "hook-1")
        assert_refused_without_secret(probe, 403, "secret_key_required")
        assert await endpoint_count(db, shop.tenant_id) == 1

    async def test_a_read_only_secret_key_replaying_the_merchants_key_is_refused(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        reader = await another_key(db, shop, kind=KeyKind.SECRET, scopes=[Scope.READ.value])
        created = await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-1")
        assert created.status_code == 201, created.text

        probe = await post(client, "/v1/webhook_endpoints", ENDPOINT, reader, "hook-1")
        assert_refused_without_secret(probe, 403, "insufficient_scope")
        assert await endpoint_count(db, shop.tenant_id) == 1

    async def test_a_rotated_secret_is_not_replayed_to_a_weaker_key(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        reader = await another_key(db, shop, kind=KeyKind.SECRET, scopes=[Scope.READ.value])
        endpoint = (await client.post("/v1/webhook_endpoints", json=ENDPOINT, headers=shop.secret)).json()
        path = f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret"
        body = {"previous_secret_valid_hours": 1}
        rotated = await post(client, path, body, shop.secret, "rotate-1")
        assert rotated.status_code == 200, rotated.text

        for headers, code in ((shop.publishable, "secret_key_required"), (reader, "insufficient_scope")):
            probe = await post(client, path, body, headers, "rotate-1")
            assert_refused_without_secret(probe, 403, code)
        # The owner's retry is still the rotation it made, not a second one.
        again = await post(client, path, body, shop.secret, "rotate-1")
        assert (again.headers.get(REPLAYED), again.json()) == ("true", rotated.json())

    async def test_another_secret_key_neither_sees_nor_blocks_the_first_keys_answer(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        second = await another_key(db, shop, kind=KeyKind.SECRET, scopes=[])
        mine = await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-1")
        theirs = await post(client, "/v1/webhook_endpoints", ENDPOINT, second, "hook-1")
        assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
        assert REPLAYED not in theirs.headers
        assert theirs.json()["id"] != mine.json()["id"]
        assert theirs.json()["secret"] != mine.json()["secret"]

        # Nor does another request under the same Idempotency-Key count as a reuse of mine.
        other_body = await post(
            client, "/v1/webhook_endpoints", {**ENDPOINT, "events": ["*"]}, second, "hook-2"
        )
        assert other_body.status_code == 201, other_body.text
        claimed_first = await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-2")
        assert (claimed_first.status_code, claimed_first.headers.get(REPLAYED)) == (201, None)

        for headers, expected in ((shop.secret, mine), (second, theirs)):
            replay = await post(client, "/v1/webhook_endpoints", ENDPOINT, headers, "hook-1")
            assert (replay.headers.get(REPLAYED), replay.json()) == ("true", expected.json())
        assert await endpoint_count(db, shop.tenant_id) == 4


class TestSavedAnswersAtRest:
    async def test_the_saved_answer_row_does_not_hold_the_secret(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        created = await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-1")
        secret = created.json()["secret"]
        async with db.session(write=False) as session:
            (row,) = (
                await session.execute(
                    text(f"SELECT response_body, response_status FROM {SAVED_ANSWERS} WHERE key = :key"),
                    {"key": "hook-1"},
                )
            ).all()
        assert row.response_status == 201
        assert "whsec_" not in row.response_body
        assert secret.removeprefix("whsec_") not in row.response_body
        assert created.json()["id"] not in row.response_body  # the whole answer is sealed

        replay = await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-1")
        assert (replay.headers.get(REPLAYED), replay.json()["secret"]) == ("true", secret)

    async def test_an_answer_moved_to_another_keys_row_does_not_open(
        self, db: Database, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        second = await another_key(db, shop, kind=KeyKind.SECRET, scopes=[])
        await post(client, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-1")
        await post(client, "/v1/webhook_endpoints", ENDPOINT, second, "hook-2")
        async with db.session() as session:
            await session.execute(
                text(
                    f"UPDATE {SAVED_ANSWERS} SET response_body = "
                    f"(SELECT response_body FROM {SAVED_ANSWERS} WHERE key = 'hook-1') WHERE key = 'hook-2'"
                )
            )
        stolen = await post(client, "/v1/webhook_endpoints", ENDPOINT, second, "hook-2")
        assert (stolen.status_code, stolen.json()["error"]["code"]) == (503, "idempotent_answer_unreadable")
        assert "whsec_" not in stolen.text


def _api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Every route, through included routers (kept whole as `original_router` by FastAPI)."""
    found: list[APIRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def _calls(dependant: Dependant) -> list[object]:
    found: list[object] = []
    for sub in dependant.dependencies:
        found += [sub.call, *_calls(sub)]
    return found


def _is_key_check(call: object) -> bool:
    return call in (require_any_key, require_secret_key, require_storefront) or getattr(
        call, "__qualname__", ""
    ).startswith("_requiring.")


class TestProductionWithoutASecretsKey:
    async def test_a_post_with_a_key_is_refused_before_it_runs(self, db: Database, shop: Shop) -> None:
        """An answer that could not be sealed must not be kept in the clear: refuse up front."""
        production = make_settings(
            env="production",
            checkout_token_secret="k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ",
            database_url=db.engine.url.render_as_string(hide_password=False),
        )
        transport = httpx.ASGITransport(app=create_app(production, database=db))
        async with httpx.AsyncClient(transport=transport, base_url="https://paycore.test") as api:
            refused = await post(api, "/v1/webhook_endpoints", ENDPOINT, shop.secret, "hook-1")
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "secrets_key_missing")
        assert await endpoint_count(db, shop.tenant_id) == 0


class TestEveryRouteClaimsAfterItsKeyCheck:
    def test_every_post_taking_a_tenant_key_claims_in_its_key_check_before_any_session(
        self, db: Database, settings: Settings
    ) -> None:
        """The claim opens its own write session: one opened before it (SQLite's writer lock is
        one per process) would wait for ever, and a route authenticating outside the `…KeyDep`
        aliases would never claim (or replay) at all."""
        routes = [
            route
            for route in _api_routes(create_app(settings, database=db).routes)
            if "POST" in route.methods and route.path.startswith("/v1/")
        ]
        checked = 0
        for route in routes:
            top = [sub.call for sub in route.dependant.dependencies]
            checks = [index for index, call in enumerate(top) if _is_key_check(call)]
            if authenticate not in _calls(route.dependant):
                continue
            assert len(checks) == 1, f"{route.path}: its key check is not one of the …KeyDep aliases"
            sessions = [index for index, call in enumerate(top) if call in (_read_session, _write_session)]
            assert all(checks[0] < index for index in sessions), f"{route.path}: a session opens first"
            checked += 1
        assert checked >= 10  # the merchant and storefront POSTs
