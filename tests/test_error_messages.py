"""Every refusal reads as a sentence a merchant's developer can act on, in the one envelope, from a
route or from the edge alike (issue 12, point 9): a walk over bad requests a newcomer sends."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from paycore.config import Settings
from paycore.db import Database
from tests.flows.helpers import Shop, buy, confirm, create_product, deliver, open_shop
from tests.test_rate_limits import client_for, limited_app

PRODUCT = {"name": "Widget", "price": 2500, "currency": "EUR", "kind": "physical"}
JARGON = ("Input should", "Value error", "Field required", "Extra inputs", "dictionary", "http_error")


def assert_actionable(response: httpx.Response, *, status: int, code: str, param: str | None = None) -> str:
    """The envelope's shape, a message that is a sentence, `param` naming the field; the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    envelope = response.json()
    assert list(envelope) == ["error"]
    error: dict[str, Any] = envelope["error"]
    expected_keys = {"type", "code", "message", "request_id"} | ({"param"} if param is not None else set())
    assert set(error) == expected_keys, error
    assert error["code"] == code
    assert error.get("param") == param
    assert error["request_id"] == response.headers["x-request-id"]
    message: str = error["message"]
    assert re.match(r"^[A-Z]", message) and message.endswith("."), message
    assert not any(word in message for word in JARGON), message
    # One rendering whatever answered: a route's JSONResponse or a middleware at the edge.
    assert response.content == json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
    return message


async def fulfilled_order(db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop) -> str:
    bought = await buy(client, shop, (await create_product(client, shop))["id"])
    await confirm(client, bought["payment"]["id"])
    await deliver(db, settings, client)
    order_id: str = bought["order"]["id"]
    return order_id


class TestBodies:
    @pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
    async def test_a_body_not_sent_as_json_says_how_to_send_it(
        self, db: Database, client: httpx.AsyncClient, content_type: str | None
    ) -> None:
        shop = await open_shop(db)
        headers = {**shop.secret, **({"content-type": content_type} if content_type else {})}
        response = await client.post("/v1/products", content=json.dumps(PRODUCT).encode(), headers=headers)
        message = assert_actionable(response, status=415, code="unsupported_content_type")
        assert "Content-Type: application/json" in message

    async def test_a_json_body_that_is_not_an_object(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.post("/v1/products", json=[PRODUCT], headers=shop.secret)
        assert assert_actionable(response, status=422, code="validation_error", param="body") == (
            "The request body must be a JSON object."
        )

    @pytest.mark.parametrize("content_type", [None, "application/json"])
    async def test_a_body_that_is_not_utf8(
        self, db: Database, client: httpx.AsyncClient, content_type: str | None
    ) -> None:
        shop = await open_shop(db)
        headers = {**shop.secret, **({"content-type": content_type} if content_type else {})}
        response = await client.post("/v1/products", content=b'{"name": "Caf\xe9"}', headers=headers)
        assert_actionable(response, status=400, code="invalid_characters", param="body")

    async def test_no_body_at_all(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products", headers={**shop.secret, "content-type": "application/json"}
        )
        message = assert_actionable(response, status=422, code="validation_error", param="body")
        assert "Content-Type: application/json" in message

    async def test_broken_json(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products", content=b'{"name": ', headers={**shop.secret, "content-type": "application/json"}
        )
        assert_actionable(response, status=400, code="invalid_json")


class TestFields:
    async def test_each_bad_field_is_named_in_a_sentence(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products",
            json={"price": "25", "currency": "EUR", "kind": "toy", "colour": "red"},
            headers=shop.secret,
        )
        message = assert_actionable(response, status=422, code="validation_error", param="name")
        assert message == (
            "Missing required param: name. Invalid price: must be a valid integer. "
            "Invalid kind: must be 'physical', 'digital' or 'service'. Received unknown param: colour."
        )

    async def test_a_nested_field(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/checkout",
            json={"cart_id": "cart_x", "customer": {"email": "not-an-address"}},
            headers=shop.publishable,
        )
        message = assert_actionable(response, status=422, code="validation_error", param="customer.email")
        assert message.startswith("Invalid customer.email: ")

    async def test_a_query_parameter(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.get("/v1/orders", params={"limit": "ten"}, headers=shop.secret)
        message = assert_actionable(response, status=422, code="validation_error", param="limit")
        assert message == "Invalid limit: must be a valid integer, unable to parse string as an integer."

    async def test_amount_off_without_a_currency_names_the_currency(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/promo_codes", json={"code": "TENOFF", "amount_off": 1000}, headers=shop.secret
        )
        message = assert_actionable(response, status=422, code="validation_error", param="currency")
        assert message == "Invalid currency: amount_off needs a currency."

    async def test_a_rule_about_the_whole_body(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/promo_codes", json={"code": "BOTH", "amount_off": 5, "percent_off": 5}, headers=shop.secret
        )
        message = assert_actionable(response, status=422, code="validation_error", param="body")
        assert message == "Invalid request body: give exactly one of percent_off or amount_off."


class TestStatesAndLookups:
    async def test_cancelling_a_fulfilled_order(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        order_id = await fulfilled_order(db, settings, client, shop)
        response = await client.post(f"/v1/orders/{order_id}/cancel", headers=shop.secret)
        message = assert_actionable(response, status=409, code="invalid_transition")
        assert message == "A fulfilled order cannot be canceled. Refund it instead."

    async def test_common_refusals(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        assert_actionable(
            await client.get("/v1/orders/ord_missing", headers=shop.secret),
            status=404,
            code="resource_missing",
            param="id",
        )
        assert_actionable(
            await client.get("/v1/nothing-here", headers=shop.secret), status=404, code="route_not_found"
        )
        assert_actionable(
            await client.delete("/v1/orders", headers=shop.secret), status=405, code="method_not_allowed"
        )
        unauthenticated = await client.get("/v1/orders")
        assert unauthenticated.status_code == 401
        assert_actionable(unauthenticated, status=401, code=unauthenticated.json()["error"]["code"])


class TestTheEdge:
    """Refusals made by middleware, before any route: the same envelope, the same voice."""

    async def test_a_body_too_large(
        self, db: Database, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        shop = await open_shop(db)
        big = {**PRODUCT, "description": "x" * (settings.max_body_bytes + 1)}
        response = await client.post("/v1/products", json=big, headers=shop.secret)
        assert_actionable(response, status=413, code="payload_too_large")

    async def test_json_nested_too_deep(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        deep = b'{"a":' * 200 + b"1" + b"}" * 200
        response = await client.post(
            "/v1/products", content=deep, headers={**shop.secret, "content-type": "application/json"}
        )
        assert_actionable(response, status=400, code="json_too_deep")

    async def test_a_nul_in_the_query(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.get("/v1/orders?customer_email=a%00b", headers=shop.secret)
        assert_actionable(response, status=400, code="invalid_characters", param="query")

    async def test_a_bad_idempotency_key(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products", json=PRODUCT, headers={**shop.secret, "Idempotency-Key": "k" * 300}
        )
        assert_actionable(response, status=400, code="idempotency_key_invalid")

    async def test_rate_limited(self, db: Database) -> None:
        shop = await open_shop(db)
        app = limited_app(db, rate_limit_merchant_api="1/minute")
        async with client_for(app) as http:
            assert (await http.get("/v1/tenant", headers=shop.secret)).status_code == 200
            refused = await http.get("/v1/tenant", headers=shop.secret)
        message = assert_actionable(refused, status=429, code="rate_limited")
        assert message == f"Too many requests; try again in {refused.headers['retry-after']} seconds."
