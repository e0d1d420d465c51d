"""What `PUT /v1/providers/stripe` accepts, per mode; secrets shown masked only."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from paycore.db import Database
from paycore.payments.providers.registry import ProviderRegistry
from paycore.payments.providers.stripe_credentials import StripeCredentials
from tests.flows.helpers import open_shop
from tests.providers.stripe.conftest import CREDENTIALS, PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET
from tests.providers.support import set_provider

LIVE_SECRET = "sk_live_51PaycoreLiveKey000000000001234"
LIVE_PUBLISHABLE = "pk_live_51PaycoreLiveKey000000000005678"


class TestModel:
    @pytest.mark.parametrize(
        ("livemode", "secret", "publishable"),
        [
            (False, SECRET_KEY, PUBLISHABLE_KEY),
            (False, "rk_test_51RestrictedKey000000000", PUBLISHABLE_KEY),
            (True, LIVE_SECRET, LIVE_PUBLISHABLE),
            (True, "rk_live_51RestrictedKey000000000", LIVE_PUBLISHABLE),
        ],
    )
    def test_keys_of_the_mode_are_taken(self, livemode: bool, secret: str, publishable: str) -> None:
        parsed = StripeCredentials.model_validate(
            {"secret_key": secret, "publishable_key": publishable}, context={"livemode": livemode}
        )
        assert parsed.secret_key.get_secret_value() == secret

    @pytest.mark.parametrize(
        ("livemode", "secret", "publishable"),
        [
            (False, LIVE_SECRET, PUBLISHABLE_KEY),  # a live key in test mode
            (True, SECRET_KEY, LIVE_PUBLISHABLE),
            (True, LIVE_SECRET, PUBLISHABLE_KEY),
            (False, PUBLISHABLE_KEY, PUBLISHABLE_KEY),  # the publishable key as the secret one
            (False, "sk_test_short", PUBLISHABLE_KEY),
            (False, SECRET_KEY + "\r\nX-Evil: 1", PUBLISHABLE_KEY),
        ],
    )
    def test_keys_of_the_other_mode_or_shape_are_refused_without_echoing_them(
        self, livemode: bool, secret: str, publishable: str
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            StripeCredentials.model_validate(
                {"secret_key": secret, "publishable_key": publishable}, context={"livemode": livemode}
            )
        assert secret not in str(refused.value)
        assert secret[8:] not in str(refused.value)

    def test_an_unknown_mode_fails_closed(self) -> None:
        with pytest.raises(ValidationError, match="mode"):
            StripeCredentials.model_validate(CREDENTIALS)

    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            StripeCredentials.model_validate(
                {**CREDENTIALS, "webhook_secret": WEBHOOK_SECRET}, context={"livemode": False}
            )


class TestApi:
    async def test_put_then_get_shows_the_secret_key_masked_only(
        self, db: Database, paycore: tuple[httpx.AsyncClient, ProviderRegistry]
    ) -> None:
        client, _ = paycore
        shop = await open_shop(db)
        shown = await set_provider(client, shop, "stripe", dict(CREDENTIALS), webhook_secret=WEBHOOK_SECRET)
        got = await client.get("/v1/providers/stripe", headers=shop.secret)
        for response_text in (str(shown), got.text):
            assert SECRET_KEY not in response_text
            assert WEBHOOK_SECRET not in response_text
        body = got.json()
        assert body["livemode"] is False
        assert body["credentials"] == {
            "secret_key": f"sk_test_…{SECRET_KEY[-4:]}",
            "publishable_key": PUBLISHABLE_KEY,
        }
        assert body["webhook_url"] == f"http://paycore.test/webhooks/stripe/{shop.slug}"

    async def test_a_live_key_through_a_test_key_is_refused_and_not_echoed(
        self, db: Database, paycore: tuple[httpx.AsyncClient, ProviderRegistry]
    ) -> None:
        client, _ = paycore
        shop = await open_shop(db)
        response = await client.put(
            "/v1/providers/stripe",
            json={"credentials": {"secret_key": LIVE_SECRET, "publishable_key": LIVE_PUBLISHABLE}},
            headers=shop.secret,
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["param"] == "credentials.secret_key"
        assert LIVE_SECRET not in response.text
        assert (await client.get("/v1/providers/stripe", headers=shop.secret)).status_code == 404
