"""Text no database can store (NUL, unpaired surrogates, bytes that are not UTF-8) is refused at the
edge with one `400 invalid_characters` — the probes that were 500s on PostgreSQL, anonymous ones
included — and signed webhook bodies still reach their signature check byte for byte."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from paycore.config import Settings
from paycore.db import Database
from paycore.logging import configure_logging
from paycore.unstorable import storable_document, unstorable_json_field, unstorable_percent_encoded
from tests.admin.test_sign_in import login_form
from tests.flows.helpers import buy, create_product, open_shop, order
from tests.flows.test_odd_cases import payment_event, signed


@pytest.fixture
def log_output() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="DEBUG", json=True, stream=stream)
    return stream


def assert_refused(response: httpx.Response, *, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_characters",
        param,
    )
    assert error["request_id"] == response.headers["x-request-id"]


def assert_nothing_at_error_level(stream: io.StringIO) -> None:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert [line for line in lines if line.get("level") in ("error", "critical")] == []


class TestAnonymousProbes:
    async def test_nul_in_a_webhooks_tenant_slug(
        self, client: httpx.AsyncClient, log_output: io.StringIO
    ) -> None:
        response = await client.post("/webhooks/stripe/mall%00ory", content=b"{}")
        assert_refused(response, param="path")
        assert_nothing_at_error_level(log_output)

    async def test_nul_in_a_sandbox_pay_page_id(
        self, client: httpx.AsyncClient, log_output: io.StringIO
    ) -> None:
        response = await client.get("/sandbox/pay/pay_%00x")
        assert_refused(response, param="path")
        assert_nothing_at_error_level(log_output)

    async def test_nul_in_the_sign_in_forms_email(
        self, db: Database, client: httpx.AsyncClient, log_output: io.StringIO
    ) -> None:
        shop = await open_shop(db)
        token = await login_form(client)
        response = await client.post(
            "/admin/login",
            data={"csrf_token": token, "tenant": shop.slug, "email": "a\x00@b.test", "password": "x" * 12},
            follow_redirects=False,
        )
        assert_refused(response, param="body")
        assert_nothing_at_error_level(log_output)

    async def test_bytes_that_are_not_utf8_in_a_path(self, client: httpx.AsyncClient) -> None:
        assert_refused(await client.get("/sandbox/pay/pay_%ED%A0%80x"), param="path")


class TestMerchantProbes:
    async def test_nul_in_a_product_name(
        self, db: Database, client: httpx.AsyncClient, log_output: io.StringIO
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products",
            content=b'{"name": "Wid\\u0000get", "price": 100, "currency": "EUR", "kind": "physical"}',
            headers={**shop.secret, "content-type": "application/json"},
        )
        assert_refused(response, param="name")
        listed = await client.get("/v1/products", headers=shop.secret)
        assert listed.json()["data"] == []  # nothing written
        assert_nothing_at_error_level(log_output)

    async def test_a_body_that_names_no_content_type_is_checked_as_json(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products",
            content=b'{"name": "Wid\\u0000get", "price": 100, "currency": "EUR", "kind": "physical"}',
            headers=shop.secret,  # no content-type: FastAPI still parses it as JSON
        )
        assert_refused(response, param="name")

    async def test_an_unpaired_surrogate_in_a_nested_field(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        product = await create_product(client, shop)
        cart = await client.post(
            "/v1/carts",
            json={"items": [{"product_id": product["id"], "quantity": 1}]},
            headers=shop.publishable,
        )
        response = await client.post(
            "/v1/checkout",
            content=(
                b'{"cart_id": "' + cart.json()["id"].encode() + b'", '
                b'"customer": {"email": "ada@example.com", "name": "Ada \\ud800"}}'
            ),
            headers={**shop.publishable, "content-type": "application/json"},
        )
        assert_refused(response, param="customer.name")

    async def test_nul_in_a_query_parameter(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        assert_refused(await client.get("/v1/customers?email=a%00b", headers=shop.secret), param="query")

    async def test_nul_in_an_order_id(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        assert_refused(await client.get("/v1/orders/ord_%00x", headers=shop.secret), param="path")

    async def test_a_paired_surrogate_escape_is_an_ordinary_character(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products",
            content=b'{"name": "Rocket \\ud83d\\ude80", "price": 100, "currency": "EUR", "kind": "physical"}',
            headers={**shop.secret, "content-type": "application/json"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "Rocket \U0001f680"


class TestSignedBodies:
    async def test_a_webhook_body_reaches_its_signature_check_as_sent(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            f"/webhooks/sandbox/{shop.slug}",
            content=b'{"id": "evt_1", "note": "\\u0000\\ud800"}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_signature_invalid"


class TestSignedEventsWithUnstorableText:
    async def test_a_signed_event_carrying_nul_is_stored_and_applied(
        self, db: Database, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        # A provider may sign text no database stores (a buyer typed it): refusing or failing to
        # store the event would make the provider resend it forever and lose the payment.
        shop = await open_shop(db)
        product = await create_product(client, shop, price=700)
        bought = await buy(client, shop, product["id"])
        event = payment_event(bought["payment"]["id"], event_id="sbevt_nul", amount=700)
        event["data"]["payment"]["note"] = "from a\x00b \ud800"
        body = json.dumps(event).encode()  # as sent: `\u0000` and `\ud800` escapes
        response = await client.post(f"/webhooks/sandbox/{shop.slug}", **signed(settings, shop, body))
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "applied"
        assert (await order(client, shop, bought["order"]["id"]))["paid_at"] is not None


class TestScanners:
    @pytest.mark.parametrize(
        ("body", "where"),
        [
            (b'{"a": "plain"}', None),
            (b'{"a": "\\\\u0000"}', None),  # an escaped backslash then "u0000": harmless text
            (b'{"a": ["x", {"b": "\\u0000"}]}', "a.1.b"),
            (b'{"\\u0000": 1}', "?"),
            (b'{"a": "\\udc00"}', "a"),
            (b'{"a": "\xff"}', "body"),
            (b"not json \\u0000", None),  # the route's parser says invalid_json
        ],
    )
    def test_json_fields(self, body: bytes, where: str | None) -> None:
        assert unstorable_json_field(body) == where

    @pytest.mark.parametrize(
        ("raw", "bad"),
        [(b"email=a%40b", False), (b"q=caf%C3%A9", False), (b"email=a%00b", True), (b"q=%FF", True)],
    )
    def test_percent_encoded(self, raw: bytes, bad: bool) -> None:
        assert unstorable_percent_encoded(raw) is bad

    def test_a_storable_document_keeps_everything_else(self) -> None:
        document = {"a\x00": ["x\ud800y", 5, None, {"b": "\U0001f680 ok"}]}
        assert storable_document(document) == {"a\ufffd": ["x\ufffdy", 5, None, {"b": "\U0001f680 ok"}]}
