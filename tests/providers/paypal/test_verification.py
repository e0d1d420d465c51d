"""Webhook verification through the adapter, both ways, against the fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from paycore.payments.providers.base import ProviderAccount, ProviderUnavailable, WebhookRejected
from paycore.payments.providers.common import ProviderHttp
from paycore.payments.providers.paypal import PayPalProvider
from tests.providers.paypal.conftest import TENANT, MemoryCredentials, paypal_settings
from tests.providers.paypal.fake import CERT_HOST, WEBHOOK_ID, FakePayPal
from tests.providers.paypal.pki import pki

ACCOUNT = ProviderAccount(tenant_id=TENANT, tenant_slug="shop", livemode=False)
EVENT = {"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "CAP1"}}


def now() -> datetime:
    return datetime.now(UTC)


async def rejected(adapter: PayPalProvider, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(WebhookRejected) as refused:
        await adapter.verify_webhook(ACCOUNT, headers, body, now())
    return refused.value.reason


class TestOffline:
    async def test_good_signature_verifies_in_its_mode(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        body, headers = fake.signed(EVENT)
        verified = await adapter.verify_webhook(ACCOUNT, headers, body, now())
        assert verified.payload == EVENT
        assert verified.livemode is False

    async def test_headers_are_read_in_any_case(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT)
        verified = await adapter.verify_webhook(
            ACCOUNT, {k.lower(): v for k, v in headers.items()}, body, now()
        )
        assert verified.payload["id"] == "WH-1"

    async def test_chain_through_an_intermediate(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        fake.signers["CERT-mid"] = pki().via_intermediate
        body, headers = fake.signed(EVENT, cert_id="CERT-mid")
        assert (await adapter.verify_webhook(ACCOUNT, headers, body, now())).payload == EVENT

    async def test_tampered_body(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT)
        assert await rejected(adapter, body.replace(b"WH-1", b"WH-2"), headers) == "signature_mismatch"

    async def test_signed_with_the_event_id_instead_of_the_webhook_id(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        body, headers = fake.signed(EVENT, webhook_id="WH-1")
        assert await rejected(adapter, body, headers) == "signature_mismatch"

    async def test_signed_for_another_webhook(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT, webhook_id="SOMEONE-ELSES-WEBHOOK")
        assert await rejected(adapter, body, headers) == "signature_mismatch"

    async def test_rotation_second_webhook_id_verifies(
        self, adapter: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        accounts.put(webhook_ids=("NEWWEBHOOK1", WEBHOOK_ID))
        body, headers = fake.signed(EVENT)
        assert (await adapter.verify_webhook(ACCOUNT, headers, body, now())).payload == EVENT

    @pytest.mark.parametrize(
        ("signer", "reason"),
        [
            ("expired", "certificate_untrusted"),
            ("untrusted", "certificate_untrusted"),
            ("wrong_name", "certificate_not_paypal"),
        ],
    )
    async def test_certificate_refused(
        self, adapter: PayPalProvider, fake: FakePayPal, signer: str, reason: str
    ) -> None:
        fake.signers[f"CERT-{signer}"] = getattr(pki(), signer)
        body, headers = fake.signed(EVENT, cert_id=f"CERT-{signer}")
        assert await rejected(adapter, body, headers) == reason

    async def test_unknown_certificate(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT)
        headers["PAYPAL-CERT-URL"] = f"https://{CERT_HOST}/v1/notifications/certs/CERT-nope"
        assert await rejected(adapter, body, headers) == "certificate_unavailable"

    @pytest.mark.parametrize(
        "url",
        [
            "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.com/v1/notifications/certs/CERT-1",
            "https://169.254.169.254/v1/notifications/certs/CERT-1",
            "https://paypal.com@evil.com/v1/notifications/certs/CERT-1",
        ],
    )
    async def test_hostile_cert_url_is_never_fetched(
        self, adapter: PayPalProvider, fake: FakePayPal, url: str
    ) -> None:
        body, headers = fake.signed(EVENT, cert_url=url)
        assert await rejected(adapter, body, headers) == "cert_url_refused"
        assert fake.cert_fetches == []

    async def test_certificate_fetched_once_then_cached(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        for _ in range(3):
            body, headers = fake.signed(EVENT)
            await adapter.verify_webhook(ACCOUNT, headers, body, now())
        assert len(fake.cert_fetches) == 1

    async def test_cached_certificate_is_still_checked_for_expiry(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        body, headers = fake.signed(EVENT)
        await adapter.verify_webhook(ACCOUNT, headers, body, now())
        later = now() + timedelta(days=400)
        body, headers = fake.signed(EVENT, transmission_time=later.isoformat(timespec="seconds"))
        with pytest.raises(WebhookRejected) as refused:
            await adapter.verify_webhook(ACCOUNT, headers, body, later)
        assert refused.value.reason == "certificate_untrusted"

    async def test_old_transmission_is_refused(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT, transmission_time="2020-01-01T00:00:00Z")
        assert await rejected(adapter, body, headers) == "timestamp_too_old"

    async def test_missing_header(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT)
        del headers["PAYPAL-TRANSMISSION-SIG"]
        assert await rejected(adapter, body, headers) == "signature_missing"

    async def test_body_that_is_not_an_event(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(b'["not", "an", "event"]')
        assert await rejected(adapter, body, headers) == "malformed_body"

    async def test_no_webhook_id_configured_refuses(
        self, adapter: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        accounts.put(webhook_ids=())
        body, headers = fake.signed(EVENT)
        assert await rejected(adapter, body, headers) == "webhook_secret_missing"

    async def test_live_account_verifies_as_live(
        self, adapter: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        accounts.accounts.clear()
        accounts.put(livemode=True, webhook_ids=("LIVEWEBHOOK1",))
        body, headers = fake.signed(EVENT, webhook_id="LIVEWEBHOOK1")
        assert (await adapter.verify_webhook(ACCOUNT, headers, body, now())).livemode is True


@pytest.fixture
def online(trust_roots: str, accounts: MemoryCredentials, http: ProviderHttp) -> PayPalProvider:
    return PayPalProvider(paypal_settings(trust_roots, paypal_webhook_verification="online"), accounts, http)


class TestOnline:
    async def test_success(self, online: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT)
        verified = await online.verify_webhook(ACCOUNT, headers, body, now())
        assert verified.payload == EVENT
        (asked,) = fake.verify_requests
        assert asked["webhook_id"] == WEBHOOK_ID
        assert asked["webhook_event"] == json.loads(body)
        assert asked["transmission_id"] == headers["PAYPAL-TRANSMISSION-ID"]
        assert fake.cert_fetches == []  # PayPal checks the certificate, not us

    async def test_failure(self, online: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT, webhook_id="WH-1")
        assert await rejected(online, body, headers) == "signature_mismatch"

    async def test_tampered_body_fails(self, online: PayPalProvider, fake: FakePayPal) -> None:
        body, headers = fake.signed(EVENT)
        assert await rejected(online, body.replace(b"WH-1", b"WH-9"), headers) == "signature_mismatch"

    async def test_unknown_webhook_id_at_paypal_fails_closed(
        self, online: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        accounts.put(webhook_ids=("NOT-REGISTERED",))
        body, headers = fake.signed(EVENT, webhook_id="NOT-REGISTERED")
        assert await rejected(online, body, headers) == "signature_mismatch"

    async def test_each_active_webhook_id_is_tried(
        self, online: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        fake.webhook_ids.add("NEWWEBHOOK1")
        accounts.put(webhook_ids=("NEWWEBHOOK1", WEBHOOK_ID))
        body, headers = fake.signed(EVENT)
        assert (await online.verify_webhook(ACCOUNT, headers, body, now())).payload == EVENT
        assert [asked["webhook_id"] for asked in fake.verify_requests] == ["NEWWEBHOOK1", WEBHOOK_ID]

    async def test_paypal_unreachable_is_unavailable_not_refused(
        self, online: PayPalProvider, fake: FakePayPal
    ) -> None:
        fake.unavailable.add("verify")
        body, headers = fake.signed(EVENT)
        with pytest.raises(ProviderUnavailable):
            await online.verify_webhook(ACCOUNT, headers, body, now())

    async def test_paypal_host_down_is_unavailable(
        self, trust_roots: str, accounts: MemoryCredentials, fake: FakePayPal
    ) -> None:
        from tests.providers.support import HostRouter

        nowhere = ProviderHttp(timeout=5, transport=HostRouter({}))
        adapter = PayPalProvider(
            paypal_settings(trust_roots, paypal_webhook_verification="online"), accounts, nowhere
        )
        body, headers = fake.signed(EVENT)
        with pytest.raises(ProviderUnavailable):
            await adapter.verify_webhook(ACCOUNT, headers, body, now())
        await nowhere.aclose()

    async def test_one_mode_unreachable_the_other_verifies(
        self, online: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        # The live app's keys were revoked; the test account's webhook still verifies.
        accounts.put(livemode=True, webhook_ids=("LIVEWEBHOOK1",), client_secret="revoked-secret-000")
        body, headers = fake.signed(EVENT)
        verified = await online.verify_webhook(ACCOUNT, headers, body, now())
        assert verified.livemode is False

    async def test_hostile_cert_url_refused_before_asking_paypal(
        self, online: PayPalProvider, fake: FakePayPal
    ) -> None:
        body, headers = fake.signed(EVENT, cert_url="https://169.254.169.254/v1/notifications/certs/X")
        assert await rejected(online, body, headers) == "cert_url_refused"
        assert fake.verify_requests == []
