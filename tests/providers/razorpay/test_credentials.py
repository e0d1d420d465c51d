"""`PUT /v1/providers/razorpay`: the key pair of the API key's mode, the secret never shown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from paycore.auth.models import KeyMode
from paycore.config import Settings
from paycore.db import Database
from paycore.payments.providers.razorpay_credentials import RazorpayCredentials
from tests.factories import make_api_key
from tests.flows.helpers import Shop, open_shop
from tests.providers.razorpay.fake import HOST, FakeRazorpay
from tests.providers.support import HostRouter, api_client

SECRET = "Zx9SecretValue0000abcd"


@pytest.fixture
async def http(db: Database, settings: Settings, fake: FakeRazorpay) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(db, settings, HostRouter({HOST: fake.app})) as (client, _):
        yield client


class TestModel:
    @pytest.mark.parametrize(
        ("key_id", "livemode"), [("rzp_test_Abc123XYZ", False), ("rzp_live_Abc123XYZ", True)]
    )
    def test_a_key_of_the_mode_is_accepted(self, key_id: str, livemode: bool) -> None:
        parsed = RazorpayCredentials.model_validate(
            {"key_id": key_id, "key_secret": SECRET}, context={"livemode": livemode}
        )
        assert parsed.key_secret.get_secret_value() == SECRET
        assert SECRET not in repr(parsed)

    @pytest.mark.parametrize(
        ("raw", "context"),
        [
            ({"key_id": "rzp_live_Abc123XYZ", "key_secret": SECRET}, {"livemode": False}),
            ({"key_id": "rzp_test_Abc123XYZ", "key_secret": SECRET}, {"livemode": True}),
            ({"key_id": "rzp_test_Abc123XYZ", "key_secret": SECRET}, None),  # mode unknown: refuse
            ({"key_id": "sk_test_Abc123XYZ", "key_secret": SECRET}, {"livemode": False}),
            ({"key_id": "rzp_test_Abc123XYZ", "key_secret": SECRET + "\n"}, {"livemode": False}),
            ({"key_id": "rzp_test_Abc123XYZ"}, {"livemode": False}),
            ({"key_id": "rzp_test_Abc123XYZ", "key_secret": SECRET, "extra": "x"}, {"livemode": False}),
        ],
    )
    def test_refused_without_echoing_values(
        self, raw: dict[str, str], context: dict[str, bool] | None
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            RazorpayCredentials.model_validate(raw, context=context)
        messages = " ".join(error["msg"] for error in refused.value.errors())
        assert SECRET not in messages
        assert "Abc123XYZ" not in messages


class TestEndpoint:
    async def test_put_masks_the_secret_and_names_the_webhook_url(
        self, http: httpx.AsyncClient, db: Database
    ) -> None:
        shop = await open_shop(db)
        response = await http.put(
            "/v1/providers/razorpay",
            json={
                "credentials": {"key_id": "rzp_test_Abc123XYZ", "key_secret": SECRET},
                "webhook_secret": "whsec_rzp_test_0123456789",
            },
            headers=shop.secret,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["credentials"] == {"key_id": "rzp_test_Abc123XYZ", "key_secret": "…abcd"}
        assert body["webhook_url"] == f"http://paycore.test/webhooks/razorpay/{shop.slug}"
        assert body["livemode"] is False
        assert SECRET not in response.text
        assert "0123456789" not in response.text

    async def test_a_live_key_id_with_a_test_api_key_is_refused(
        self, http: httpx.AsyncClient, db: Database
    ) -> None:
        shop = await open_shop(db)
        response = await http.put(
            "/v1/providers/razorpay",
            json={"credentials": {"key_id": "rzp_live_Abc123XYZ", "key_secret": SECRET}},
            headers=shop.secret,
        )
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "credentials.key_id"
        assert "Abc123XYZ" not in response.text
        assert SECRET not in response.text

    async def test_live_mode_takes_live_keys(self, http: httpx.AsyncClient, db: Database) -> None:
        shop: Shop = await open_shop(db)
        async with db.session() as session:
            from paycore.tenancy.models import Tenant

            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            live = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        response = await http.put(
            "/v1/providers/razorpay",
            json={"credentials": {"key_id": "rzp_live_Abc123XYZ", "key_secret": SECRET}},
            headers={"Authorization": f"Bearer {live.plaintext}"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["livemode"] is True
