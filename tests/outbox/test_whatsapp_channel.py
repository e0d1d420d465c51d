"""WhatsApp notifications: the channel against a fake of the WhatsApp Cloud API (Graph API), and a
paid order with a customer phone number ending in exactly one message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database
from paycore.outbox.channels.whatsapp import TEST_MODE_WITHHELD, WhatsAppChannel
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from tests.conftest import make_settings
from tests.flows.helpers import Shop, cart_with, confirm, create_product, deliver, open_shop

TOKEN = "EAAGtest-whatsapp-token"
PHONE_NUMBER_ID = "106540352242922"
API_URL = "https://graph.facebook.com/v21.0"
CUSTOMER_PHONE = "+4915112345678"


def whatsapp_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "whatsapp_token": TOKEN,
        "whatsapp_phone_number_id": PHONE_NUMBER_ID,
        "whatsapp_template": "order_paid_v2",
        "whatsapp_language": "de_DE",
    }
    values.update(overrides)
    return make_settings(**values)


class FakeGraphApi:
    """`POST /{phone-number-id}/messages` of the WhatsApp Cloud API, for template messages. A valid
    request gets `answer` (by default the documented 200); an invalid one the Graph API's error."""

    def __init__(self, answer: httpx.Response | None = None) -> None:
        self.answer = answer
        self.messages: list[dict[str, Any]] = []
        self.rejected: list[str] = []

    @staticmethod
    def _error(status: int, code: int, message: str, error_type: str = "OAuthException") -> httpx.Response:
        return httpx.Response(
            status,
            json={"error": {"message": message, "type": error_type, "code": code, "fbtrace_id": "Atest"}},
        )

    def _problem(self, request: httpx.Request) -> str | None:
        if request.method != "POST" or str(request.url) != f"{API_URL}/{PHONE_NUMBER_ID}/messages":
            return f"unexpected {request.method} {request.url}"
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return "bad token"
        try:
            body = json.loads(request.content)
            template = body["template"]
            parameters = [
                parameter["text"]
                for component in template["components"]
                if component["type"] == "body"
                for parameter in component["parameters"]
                if parameter["type"] == "text"
            ]
            well_formed = (
                body["messaging_product"] == "whatsapp"
                and body["type"] == "template"
                and isinstance(body["to"], str)
                and isinstance(template["name"], str)
                and isinstance(template["language"]["code"], str)
                and len(parameters) >= 1
            )
        except (ValueError, KeyError, TypeError):
            return "malformed body"
        return None if well_formed else "not a template message"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        problem = self._problem(request)
        if problem is not None:
            self.rejected.append(problem)
            if problem == "bad token":
                return self._error(401, 190, "Invalid OAuth access token.")
            return self._error(400, 100, f"(#100) Invalid parameter: {problem}")
        body = json.loads(request.content)
        self.messages.append(body)
        if self.answer is not None:
            return self.answer
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"].lstrip("+")}],
                "messages": [{"id": "wamid.X"}],
            },
        )


def paid_order_message(*, number: str = "ABCDE-FGHJK", total: int = 2500) -> OutboxMessage:
    return OutboxMessage(
        id="msg_test",
        tenant_id="ten_test",
        livemode=True,
        channel=OutboxChannel.WHATSAPP,
        topic="whatsapp.order_paid",
        dedupe_key="whatsapp.order_paid:ord_test",
        payload={
            "to": CUSTOMER_PHONE,
            "order": {"id": "ord_test", "number": number, "total": total, "currency": "EUR"},
        },
    )


async def send(settings: Settings, graph: FakeGraphApi, message: OutboxMessage | None = None) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(graph)) as http:
        return await WhatsAppChannel(settings, http).deliver(message or paid_order_message())


class TestWhatsAppChannel:
    async def test_template_message_is_delivered(self) -> None:
        graph = FakeGraphApi()
        outcome = await send(
            whatsapp_settings(), graph, paid_order_message(number="K7M2P-Q9RST", total=123456)
        )
        assert graph.rejected == []
        assert (outcome.ok, outcome.detail) == (True, "wamid.X")
        (body,) = graph.messages
        assert body["to"] == CUSTOMER_PHONE
        assert body["template"]["name"] == "order_paid_v2"
        assert body["template"]["language"] == {"code": "de_DE"}
        assert body["template"]["components"] == [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "K7M2P-Q9RST"},
                    {"type": "text", "text": "1234.56 EUR"},
                ],
            }
        ]

    async def test_rate_limit_is_retried_after_what_the_api_asks(self) -> None:
        graph = FakeGraphApi(
            httpx.Response(
                429,
                headers={"Retry-After": "120"},
                json={"error": {"message": "Rate limit hit", "type": "OAuthException", "code": 130429}},
            )
        )
        outcome = await send(whatsapp_settings(), graph)
        assert len(graph.messages) == 1
        assert (outcome.ok, outcome.permanent, outcome.retry_after) == (False, False, 120.0)
        assert "429" in outcome.detail

    async def test_server_error_is_retryable(self) -> None:
        graph = FakeGraphApi(
            httpx.Response(503, json={"error": {"message": "Service unavailable", "code": 2}})
        )
        outcome = await send(whatsapp_settings(), graph)
        assert (outcome.ok, outcome.permanent, outcome.retry_after) == (False, False, None)

    async def test_network_failure_is_retryable(self) -> None:
        def unreachable(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(unreachable)) as http:
            outcome = await WhatsAppChannel(whatsapp_settings(), http).deliver(paid_order_message())
        assert (outcome.ok, outcome.permanent) == (False, False)
        assert "ConnectError" in outcome.detail

    async def test_undeliverable_message_is_permanent(self) -> None:
        graph = FakeGraphApi(
            httpx.Response(
                400,
                json={
                    "error": {
                        "message": "(#131026) Message undeliverable",
                        "type": "OAuthException",
                        "code": 131026,
                        "fbtrace_id": "Atest",
                    }
                },
            )
        )
        outcome = await send(whatsapp_settings(), graph)
        assert (outcome.ok, outcome.permanent) == (False, True)
        assert "131026" in outcome.detail

    async def test_rejected_token_is_permanent(self) -> None:
        graph = FakeGraphApi()
        outcome = await send(whatsapp_settings(whatsapp_token="EAAGexpired"), graph)
        assert graph.rejected == ["bad token"]
        assert (outcome.ok, outcome.permanent) == (False, True)
        assert "190" in outcome.detail

    @pytest.mark.parametrize("missing", ["whatsapp_token", "whatsapp_phone_number_id"])
    async def test_not_configured_is_permanent_and_sends_nothing(self, missing: str) -> None:
        graph = FakeGraphApi()
        outcome = await send(whatsapp_settings(**{missing: None}), graph)
        assert (outcome.ok, outcome.permanent) == (False, True)
        assert "not configured" in outcome.detail
        assert graph.messages == graph.rejected == []


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


@pytest.fixture
def configured_settings(settings: Settings) -> Settings:
    return whatsapp_settings(database_url=settings.database_url)


@pytest.fixture
async def configured_client(db: Database, configured_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(configured_settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=configured_settings.public_url
    ) as http:
        yield http


async def pay(
    db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, *, phone: str | None
) -> dict[str, Any]:
    """Buy one item with (or without) a phone number; the sandbox's webhook arrives three times."""
    product = await create_product(client, shop)
    customer: dict[str, Any] = {"email": "ada@example.com", "name": "Ada"}
    if phone is not None:
        customer["phone"] = phone
    response = await client.post(
        "/v1/checkout",
        json={"cart_id": await cart_with(client, shop, (product["id"], 1)), "customer": customer},
        headers=shop.publishable,
    )
    assert response.status_code == 201, response.text
    bought: dict[str, Any] = response.json()
    await confirm(client, bought["payment"]["id"], copies=3)
    await deliver(db, settings, client)
    paid = await client.get(f"/v1/orders/{bought['order']['id']}", headers=shop.secret)
    assert paid.json()["status"] == "fulfilled"  # paid, and its stock fulfilled in the same transaction
    return bought


async def whatsapp_rows(db: Database, tenant_id: str) -> list[OutboxMessage]:
    async with db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.tenant_id == tenant_id, OutboxMessage.channel == OutboxChannel.WHATSAPP
            )
        )
        return list(rows)


class TestPaidOrderNotification:
    async def test_paying_enqueues_one_message(
        self,
        db: Database,
        configured_settings: Settings,
        configured_client: httpx.AsyncClient,
        shop: Shop,
    ) -> None:
        bought = await pay(db, configured_settings, configured_client, shop, phone=CUSTOMER_PHONE)
        (row,) = await whatsapp_rows(db, shop.tenant_id)
        assert row.topic == "whatsapp.order_paid"
        assert row.status is OutboxStatus.PENDING
        assert row.payload["to"] == CUSTOMER_PHONE
        assert row.payload["order"]["number"] == bought["order"]["number"]

    async def test_a_free_test_order_never_messages_the_phone_it_names(
        self,
        db: Database,
        configured_settings: Settings,
        configured_client: httpx.AsyncClient,
        shop: Shop,
    ) -> None:
        """The relay probe: a publishable test key, a sandbox payment, a stranger's number."""
        await pay(db, configured_settings, configured_client, shop, phone=CUSTOMER_PHONE)
        graph = FakeGraphApi()
        async with httpx.AsyncClient(transport=httpx.MockTransport(graph)) as http:
            worker = OutboxDispatcher(
                db,
                {OutboxChannel.WHATSAPP: WhatsAppChannel(configured_settings, http)},
                configured_settings,
                worker_id="worker-test",
            )
            assert await worker.process_batch(asyncio.Event()) >= 1
        (row,) = await whatsapp_rows(db, shop.tenant_id)
        assert row.status is OutboxStatus.SUPPRESSED
        assert row.last_error == TEST_MODE_WITHHELD
        assert graph.messages == []

    async def test_no_phone_no_message(
        self,
        db: Database,
        configured_settings: Settings,
        configured_client: httpx.AsyncClient,
        shop: Shop,
    ) -> None:
        await pay(db, configured_settings, configured_client, shop, phone=None)
        assert await whatsapp_rows(db, shop.tenant_id) == []

    async def test_whatsapp_not_configured_no_message(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        assert not settings.whatsapp_enabled
        await pay(db, settings, client, shop, phone=CUSTOMER_PHONE)
        assert await whatsapp_rows(db, shop.tenant_id) == []
