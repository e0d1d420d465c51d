"""`/v1/providers`: credentials are validated, sealed at rest, shown only masked, kept apart by
mode, and a webhook secret rotation leaves the old secret valid for the window asked for."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
import structlog.testing
from pydantic import BaseModel, SecretStr, ValidationInfo, field_validator
from sqlalchemy import select

from paycore.app import create_app, warn_about_refused_webhooks
from paycore.audit.models import AuditEntry
from paycore.auth.models import KeyMode
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.money import Money
from paycore.payments.providers.base import (
    NeutralEvent,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderPaymentStatus,
    RefundOutcome,
    VerifiedWebhook,
)
from paycore.payments.providers.guarded import GuardedProvider
from paycore.payments.providers.registry import ProviderRegistry, breakers_for, build_registry
from paycore.provider_credentials.models import ProviderCredential
from paycore.provider_credentials.service import CredentialStore, credentials_of, reseal_all
from paycore.sealing import secrets_box
from paycore.secrets_box import new_key_line
from paycore.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.factories import make_api_key
from tests.flows.helpers import Shop, open_shop

SECRET = "acme_test_0123456789abcdefSECRET"


class AcmeCredentials(BaseModel):
    account: str
    api_key: SecretStr

    @field_validator("api_key")
    @classmethod
    def _mode(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        prefix = "acme_live_" if (info.context or {}).get("livemode") else "acme_test_"
        if not value.get_secret_value().startswith(prefix):
            raise ValueError(f"must start with {prefix} in this mode")
        return value


class Acme:
    """A provider that only needs configuring: these tests never call it."""

    name = "acme"
    supports_livemode = True
    credentials_model: type[BaseModel] | None = AcmeCredentials
    secret_fields = frozenset({"api_key"})
    webhook_secret_required = True

    async def check_ready(self, account: ProviderAccount) -> None:
        raise NotImplementedError

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        raise NotImplementedError

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: Any
    ) -> VerifiedWebhook:
        raise NotImplementedError

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        raise NotImplementedError

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        raise NotImplementedError

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        raise NotImplementedError

    async def confirm(
        self, account: ProviderAccount, payment_ref: str, params: Mapping[str, Any]
    ) -> ProviderPaymentStatus:
        raise NotImplementedError

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        raise NotImplementedError


def registry_with_acme(settings: Settings, db: Database) -> ProviderRegistry:
    base = build_registry(settings, db)
    breakers = breakers_for(settings)
    return ProviderRegistry(
        {
            "sandbox": base.get("sandbox"),
            "acme": GuardedProvider(Acme(), breakers),
        }
    )


@pytest.fixture
async def api(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=db)
    app.state.providers = registry_with_acme(settings, db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://paycore.test"
    ) as http:
        yield http


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def put(
    api: httpx.AsyncClient, shop: Shop, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.put("/v1/providers/acme", json=body, headers=headers or shop.secret)


class TestSetting:
    async def test_secrets_are_sealed_and_shown_only_masked(
        self, db: Database, settings: Settings, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        response = await put(
            api,
            shop,
            {"credentials": {"account": "acct_1", "api_key": SECRET}, "webhook_secret": "whsec_abcdefgh1234"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["credentials"] == {"account": "acct_1", "api_key": "acme_…CRET"}
        assert body["webhook_secret"] == "…1234"  # too short to show its kind as well
        assert body["webhook_url"] == f"{settings.public_url}/webhooks/acme/{shop.slug}"
        assert body["livemode"] is False
        assert SECRET not in response.text

        listed = await api.get("/v1/providers", headers=shop.secret)
        assert [item["provider"] for item in listed.json()["data"]] == ["acme"]
        assert SECRET not in listed.text

        async with db.session(write=False) as session:
            row = await session.scalar(select(ProviderCredential))
            audits = list(
                await session.scalars(
                    select(AuditEntry).where(AuditEntry.action.like("provider_credentials%"))
                )
            )
        assert row is not None
        assert SECRET not in row.sealed and "whsec_abcdefgh1234" not in row.sealed
        assert SECRET not in json.dumps([audit.after for audit in audits])
        opened = credentials_of(secrets_box(settings), row, utcnow())
        assert (opened.values["api_key"], opened.webhook_secrets) == (SECRET, ("whsec_abcdefgh1234",))
        assert SECRET not in repr(opened)

    async def test_the_store_reads_them_back_by_mode(
        self, db: Database, settings: Settings, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        await put(api, shop, {"credentials": {"account": "acct_1", "api_key": SECRET}})
        store = CredentialStore(db, settings)
        test = await store.get(shop.tenant_id, "acme", livemode=False)
        assert test is not None and test.values["account"] == "acct_1"
        assert test.webhook_secrets == ()
        assert await store.get(shop.tenant_id, "acme", livemode=True) is None

    async def test_a_live_key_sets_live_credentials_and_a_test_key_never_sees_them(
        self, db: Database, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            live = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        live_headers = {"Authorization": f"Bearer {live.plaintext}"}
        refused = await put(api, shop, {"credentials": {"account": "a", "api_key": SECRET}}, live_headers)
        assert (refused.status_code, refused.json()["error"]["param"]) == (422, "credentials.api_key")
        assert SECRET not in refused.text
        accepted = await put(
            api,
            shop,
            {"credentials": {"account": "a", "api_key": "acme_live_0123456789abcdef"}},
            live_headers,
        )
        assert (accepted.status_code, accepted.json()["livemode"]) == (200, True)
        assert (await api.get("/v1/providers/acme", headers=shop.secret)).status_code == 404
        assert (await api.get("/v1/providers", headers=shop.secret)).json()["data"] == []

    async def test_omitted_parts_are_kept(
        self, db: Database, settings: Settings, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        await put(
            api,
            shop,
            {"credentials": {"account": "acct_1", "api_key": SECRET}, "webhook_secret": "whsec_one_11111"},
        )
        response = await put(api, shop, {"webhook_secret": "whsec_two_22222"})
        assert response.json()["credentials"]["account"] == "acct_1"
        found = await CredentialStore(db, settings).get(shop.tenant_id, "acme", livemode=False)
        assert found is not None
        assert (found.values["api_key"], found.webhook_secrets) == (SECRET, ("whsec_two_22222",))


class TestWebhookSecretRotation:
    async def test_the_old_secret_verifies_until_the_window_ends(
        self, db: Database, settings: Settings, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        await put(
            api,
            shop,
            {"credentials": {"account": "a", "api_key": SECRET}, "webhook_secret": "whsec_old_11111"},
        )
        response = await put(
            api, shop, {"webhook_secret": "whsec_new_22222", "previous_webhook_secret_valid_hours": 24}
        )
        assert response.json()["previous_webhook_secret_expires_at"] is not None
        async with db.session(write=False) as session:
            row = await session.scalar(select(ProviderCredential))
        assert row is not None
        box = secrets_box(settings)
        assert credentials_of(box, row, utcnow()).webhook_secrets == ("whsec_new_22222", "whsec_old_11111")
        later = utcnow() + timedelta(hours=25)
        assert credentials_of(box, row, later).webhook_secrets == ("whsec_new_22222",)


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"webhook_secret": "whsec_only_1234"}, 400, "invalid_request"),  # nothing set yet
            ({"credentials": {"account": "a"}}, 422, "validation_error"),
            ({"credentials": {"account": "a", "api_key": SECRET}, "extra": 1}, 422, "validation_error"),
            (
                {"credentials": {"account": "a", "api_key": SECRET}, "webhook_secret": "short"},
                422,
                "validation_error",
            ),
            (
                {
                    "credentials": {"account": "a", "api_key": SECRET},
                    "previous_webhook_secret_valid_hours": 999,
                },
                422,
                "validation_error",
            ),
        ],
    )
    async def test_bad_bodies_write_nothing(
        self, db: Database, api: httpx.AsyncClient, shop: Shop, body: dict[str, Any], status: int, code: str
    ) -> None:
        response = await put(api, shop, body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        async with db.session(write=False) as session:
            assert await session.scalar(select(ProviderCredential)) is None

    async def test_unknown_and_unconfigurable_providers(self, api: httpx.AsyncClient, shop: Shop) -> None:
        unknown = await api.put("/v1/providers/nope", json={"credentials": {}}, headers=shop.secret)
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_provider")
        sandbox = await api.put("/v1/providers/sandbox", json={"credentials": {}}, headers=shop.secret)
        assert sandbox.status_code == 400

    async def test_publishable_keys_cannot_touch_credentials(
        self, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        response = await put(
            api, shop, {"credentials": {"account": "a", "api_key": SECRET}}, shop.publishable
        )
        assert response.status_code == 403

    async def test_delete_removes_them(self, db: Database, api: httpx.AsyncClient, shop: Shop) -> None:
        await put(api, shop, {"credentials": {"account": "a", "api_key": SECRET}})
        assert (await api.delete("/v1/providers/acme", headers=shop.secret)).status_code == 204
        assert (await api.get("/v1/providers/acme", headers=shop.secret)).status_code == 404
        assert (await api.delete("/v1/providers/acme", headers=shop.secret)).status_code == 404


class TestSecretsKey:
    async def test_production_without_a_secrets_key_refuses_to_store(self, db: Database, shop: Shop) -> None:
        production = make_settings(
            env="production",
            checkout_token_secret="k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ",
            database_url=db.engine.url.render_as_string(hide_password=False),
        )
        app = create_app(production, database=db)
        app.state.providers = registry_with_acme(production, db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://paycore.test"
        ) as api:
            response = await put(api, shop, {"credentials": {"account": "a", "api_key": SECRET}})
        assert (response.status_code, response.json()["error"]["code"]) == (503, "secrets_key_missing")

    async def test_rows_sealed_under_an_old_key_open_after_rotation_and_reseal(
        self, db: Database, shop: Shop
    ) -> None:
        base = db.engine.url.render_as_string(hide_password=False)
        old_key, new_key = new_key_line("old"), new_key_line("new")
        before = make_settings(database_url=base, secrets_key=old_key)
        app = create_app(before, database=db)
        app.state.providers = registry_with_acme(before, db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://paycore.test"
        ) as api:
            assert (
                await put(api, shop, {"credentials": {"account": "a", "api_key": SECRET}})
            ).status_code == 200

        rotated = make_settings(database_url=base, secrets_key=f"{new_key},{old_key}")
        assert (await CredentialStore(db, rotated).get(shop.tenant_id, "acme", livemode=False)) is not None
        async with db.session() as session:
            assert await reseal_all(session, rotated) == 1
        only_new = make_settings(database_url=base, secrets_key=new_key)
        found = await CredentialStore(db, only_new).get(shop.tenant_id, "acme", livemode=False)
        assert found is not None and found.values["api_key"] == SECRET
        # And a keyring without the key that sealed a row reads nothing (fail closed), loudly.
        assert (
            await CredentialStore(db, make_settings(database_url=base, secrets_key=old_key)).get(
                shop.tenant_id, "acme", livemode=False
            )
            is None
        )


class TestStartUpWarning:
    async def test_keys_without_a_webhook_secret_are_named_at_start_up(
        self, db: Database, settings: Settings, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        await put(api, shop, {"credentials": {"account": "a", "api_key": SECRET}})
        registry = registry_with_acme(settings, db)
        with structlog.testing.capture_logs() as logs:
            await warn_about_refused_webhooks(db, registry)
        warned = [entry for entry in logs if entry["event"] == "provider_webhooks_refused"]
        assert [(entry["provider"], entry["tenant"]) for entry in warned] == [("acme", shop.tenant_id)]

        await put(api, shop, {"webhook_secret": "whsec_now_set_1234"})
        with structlog.testing.capture_logs() as logs:
            await warn_about_refused_webhooks(db, registry)
        assert not [entry for entry in logs if entry["event"] == "provider_webhooks_refused"]


class TestHostileValues:
    @pytest.mark.parametrize(
        ("body", "status"),
        [
            # NUL is refused at the edge, before any route (400 invalid_characters)
            ({"credentials": {"account": "a\u0000b", "api_key": SECRET}}, 400),
            (
                {"credentials": {"account": "a", "api_key": SECRET}, "webhook_secret": "aaaaaaaaaaa\u0000"},
                400,
            ),
            (
                {"credentials": {"account": "a", "api_key": SECRET}, "webhook_secret": "with spaces inside"},
                422,
            ),
        ],
        ids=["nul-in-credential", "nul-in-webhook-secret", "space-in-webhook-secret"],
    )
    async def test_refused_and_nothing_written(
        self, db: Database, api: httpx.AsyncClient, shop: Shop, body: dict[str, Any], status: int
    ) -> None:
        response = await put(api, shop, body)
        assert response.status_code == status, response.text
        async with db.session(write=False) as session:
            assert await session.scalar(select(ProviderCredential)) is None


class TestModesKeepTheirOwnSecrets:
    async def test_one_webhook_secret_for_both_modes_is_refused(
        self, db: Database, api: httpx.AsyncClient, shop: Shop
    ) -> None:
        await put(
            api,
            shop,
            {"credentials": {"account": "a", "api_key": SECRET}, "webhook_secret": "whsec_same_in_both"},
        )
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            live = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        response = await put(
            api,
            shop,
            {
                "credentials": {"account": "a", "api_key": "acme_live_0123456789abcdef"},
                "webhook_secret": "whsec_same_in_both",
            },
            {"Authorization": f"Bearer {live.plaintext}"},
        )
        assert (response.status_code, response.json()["error"]["param"]) == (422, "webhook_secret")
        assert "whsec_same_in_both" not in response.text
