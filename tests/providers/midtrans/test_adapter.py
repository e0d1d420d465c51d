"""The adapter against the fake Midtrans, with credentials held in memory (no database)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from paycore.money import Money
from paycore.payments.providers.base import (
    NeutralKind,
    PaymentRequest,
    ProviderAccount,
    ProviderCredentials,
    ProviderNotConfigured,
    ProviderPaymentState,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundState,
    WebhookRejected,
)
from paycore.payments.providers.common import ProviderHttp
from paycore.payments.providers.midtrans import MidtransProvider
from tests.conftest import make_settings
from tests.providers.midtrans.fake import (
    API_HOST,
    CLIENT_KEY,
    LIVE_CLIENT_KEY,
    LIVE_SERVER_KEY,
    SERVER_KEY,
    SNAP_HOST,
    FakeMidtrans,
)

TEST = ProviderAccount(tenant_id="ten_1", tenant_slug="shop", livemode=False)
LIVE = ProviderAccount(tenant_id="ten_1", tenant_slug="shop", livemode=True)
NOW = datetime(2024, 1, 1, tzinfo=UTC)


class MemoryCredentials:
    """A `CredentialSource` over a dict: (tenant, livemode) → keys."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, bool], dict[str, str]] = {}

    def put(self, livemode: bool, server_key: str, client_key: str, tenant_id: str = "ten_1") -> None:
        self.values[(tenant_id, livemode)] = {"server_key": server_key, "client_key": client_key}

    async def get(self, tenant_id: str, provider: str, *, livemode: bool) -> ProviderCredentials | None:
        values = self.values.get((tenant_id, livemode))
        if values is None or provider != "midtrans":
            return None
        return ProviderCredentials(provider=provider, livemode=livemode, values=values)


@pytest.fixture
def credentials() -> MemoryCredentials:
    source = MemoryCredentials()
    source.put(False, SERVER_KEY, CLIENT_KEY)
    return source


@pytest.fixture
async def midtrans(fake: FakeMidtrans, credentials: MemoryCredentials) -> AsyncIterator[MidtransProvider]:
    http = ProviderHttp(timeout=5, transport=fake.transport())
    try:
        yield MidtransProvider(make_settings(), credentials, http)
    finally:
        await http.aclose()


def payment(attempt_id: str = "pay_0001", amount: int = 9_900_000, **extra: object) -> PaymentRequest:
    return PaymentRequest(
        account=TEST,
        attempt_id=attempt_id,
        order_id="ord_1",
        order_number="ABCDE-FGHJK",
        amount=Money(amount, "IDR"),
        customer_email="ada@example.com",
        **extra,  # type: ignore[arg-type]
    )


def signed(body: dict[str, object]) -> bytes:
    return json.dumps(body).encode()


class TestCreatePayment:
    async def test_snap_transaction_for_the_attempt(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        session = await midtrans.create_payment(payment(return_url="https://shop.example/done"))

        token = fake.transactions["pay_0001"].token
        assert session.provider_ref == "pay_0001"
        assert session.redirect_url == f"https://{SNAP_HOST}/snap/v4/redirection/{token}"
        assert session.client_data == {"snap_token": token, "client_key": CLIENT_KEY}
        sent = fake.requests[-1]
        assert (sent["host"], sent["path"]) == (SNAP_HOST, "/snap/v1/transactions")
        assert sent["authorization"] == "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()
        assert json.loads(sent["body"]) == {
            "transaction_details": {"order_id": "pay_0001", "gross_amount": 99_000},
            "customer_details": {"email": "ada@example.com"},
            "callbacks": {"finish": "https://shop.example/done"},
        }

    async def test_no_callbacks_without_a_return_url(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        await midtrans.create_payment(payment())
        assert "callbacks" not in json.loads(fake.requests[-1]["body"])

    async def test_live_mode_uses_the_production_hosts_and_keys(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, credentials: MemoryCredentials
    ) -> None:
        credentials.put(True, LIVE_SERVER_KEY, LIVE_CLIENT_KEY)
        session = await midtrans.create_payment(replace(payment(), account=LIVE))
        assert fake.requests[-1]["host"] == "app.midtrans.com"
        assert session.client_data["client_key"] == LIVE_CLIENT_KEY

    async def test_a_second_create_for_the_same_order_id_is_refused(self, midtrans: MidtransProvider) -> None:
        await midtrans.create_payment(payment())
        with pytest.raises(ProviderRequestRefused, match="already been taken"):
            await midtrans.create_payment(payment())

    async def test_a_bad_key_is_refused_and_not_shown(
        self, midtrans: MidtransProvider, credentials: MemoryCredentials
    ) -> None:
        credentials.put(False, "SB-Mid-server-REVOKED", CLIENT_KEY)
        with pytest.raises(ProviderRequestRefused) as caught:
            await midtrans.create_payment(payment())
        assert "401" in str(caught.value)
        assert "REVOKED" not in str(caught.value)

    @pytest.mark.parametrize("amount", [9_900_050, 1])
    async def test_fractions_of_a_rupiah_are_refused_before_calling(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, amount: int
    ) -> None:
        with pytest.raises(ProviderRequestRefused, match="whole number of rupiah"):
            await midtrans.create_payment(payment(amount=amount))
        assert fake.requests == []

    @pytest.mark.parametrize("status", [500, 503, 429])
    async def test_midtrans_trouble_is_unavailable(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, status: int
    ) -> None:
        fake.fail_with = status
        with pytest.raises(ProviderUnavailable):
            await midtrans.create_payment(payment())

    async def test_unreachable_is_unavailable(self, credentials: MemoryCredentials) -> None:
        http = ProviderHttp(timeout=5, transport=FakeMidtrans().transport())
        settings = make_settings(midtrans_snap_base_test="https://nowhere.invalid")
        try:
            with pytest.raises(ProviderUnavailable, match="could not be reached"):
                await MidtransProvider(settings, credentials, http).create_payment(payment())
        finally:
            await http.aclose()

    async def test_without_credentials_nothing_is_called(self, fake: FakeMidtrans) -> None:
        http = ProviderHttp(timeout=5, transport=fake.transport())
        adapter = MidtransProvider(make_settings(), MemoryCredentials(), http)
        with pytest.raises(ProviderNotConfigured):
            await adapter.check_ready(TEST)
        with pytest.raises(ProviderNotConfigured):
            await adapter.create_payment(payment())
        assert fake.requests == []
        await http.aclose()


class TestFetchStatus:
    async def test_before_the_customer_chooses_a_method_it_is_pending(
        self, midtrans: MidtransProvider
    ) -> None:
        await midtrans.create_payment(payment())
        status = await midtrans.fetch_status(TEST, "pay_0001")
        assert (status.state, status.amount) == (ProviderPaymentState.PENDING, None)

    @pytest.mark.parametrize(
        ("outcome", "state"),
        [
            ("settlement", ProviderPaymentState.SUCCEEDED),
            ("capture", ProviderPaymentState.SUCCEEDED),
            ("challenge", ProviderPaymentState.PENDING),
            ("pending", ProviderPaymentState.PENDING),
            ("deny", ProviderPaymentState.FAILED),
            ("expire", ProviderPaymentState.CANCELED),
            ("cancel", ProviderPaymentState.CANCELED),
        ],
    )
    async def test_states(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, outcome: str, state: ProviderPaymentState
    ) -> None:
        await midtrans.create_payment(payment())
        fake.pay("pay_0001", outcome)
        status = await midtrans.fetch_status(TEST, "pay_0001")
        assert status.state is state
        assert status.amount == Money(9_900_000, "IDR")
        assert status.charge_ref == fake.transactions["pay_0001"].transaction_id
        assert fake.requests[-1]["host"] == API_HOST
        assert fake.requests[-1]["path"] == "/v2/pay_0001/status"

    @pytest.mark.parametrize("reference", ["..", "pay_1/../../refund", "pay 1", "x" * 51])
    async def test_a_reference_that_is_no_order_id_is_not_sent(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, reference: str
    ) -> None:
        with pytest.raises(ProviderRequestRefused):
            await midtrans.fetch_status(TEST, reference)
        assert fake.requests == []

    async def test_http_errors(self, midtrans: MidtransProvider, fake: FakeMidtrans) -> None:
        fake.fail_with = 500
        with pytest.raises(ProviderUnavailable):
            await midtrans.fetch_status(TEST, "pay_0001")

    @pytest.mark.parametrize(
        ("code", "error"), [("500", ProviderUnavailable), ("401", ProviderRequestRefused)]
    )
    async def test_an_error_in_the_body_of_an_http_200_is_an_error(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, code: str, error: type[Exception]
    ) -> None:
        # Midtrans' Core API can answer HTTP 200 with the error in `status_code` (its SDK checks both).
        fake.body_error = code
        with pytest.raises(error):
            await midtrans.fetch_status(TEST, "pay_0001")

    async def test_confirm_asks_the_status_api_not_the_browser(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        await midtrans.create_payment(payment())
        claimed = {"order_id": "pay_0001", "status_code": "200", "transaction_status": "settlement"}
        status = await midtrans.confirm(TEST, "pay_0001", claimed)
        assert status.state is ProviderPaymentState.PENDING


class TestRefund:
    async def paid(self, midtrans: MidtransProvider, fake: FakeMidtrans) -> None:
        await midtrans.create_payment(payment())
        fake.pay("pay_0001", "settlement")

    async def test_refund_with_our_id_as_the_refund_key(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        await self.paid(midtrans, fake)
        outcome = await midtrans.refund(TEST, "pay_0001", Money(2_500_000, "IDR"), "re_1")
        assert outcome.state is RefundState.SUCCEEDED
        assert outcome.provider_ref == str(fake.transactions["pay_0001"].refunds[0]["refund_chargeback_id"])
        sent = json.loads(fake.requests[-1]["body"])
        assert (sent["refund_key"], sent["amount"]) == ("re_1", 25_000)
        assert fake.requests[-1]["path"] == "/v2/pay_0001/refund"

    async def test_a_retried_refund_refunds_once(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        await self.paid(midtrans, fake)
        first = await midtrans.refund(TEST, "pay_0001", Money(2_500_000, "IDR"), "re_1")
        again = await midtrans.refund(TEST, "pay_0001", Money(2_500_000, "IDR"), "re_1")
        assert first == again
        assert len(fake.transactions["pay_0001"].refunds) == 1

    async def test_a_refusal_in_the_body_is_a_failed_refund(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        await midtrans.create_payment(payment())
        fake.pay("pay_0001", "pending")
        outcome = await midtrans.refund(TEST, "pay_0001", Money(2_500_000, "IDR"), "re_1")
        assert outcome.state is RefundState.FAILED
        assert outcome.failure_reason is not None
        assert outcome.failure_reason.startswith("412: Merchant cannot modify")

    @pytest.mark.parametrize("trouble", ["http_503", "body_500"])
    async def test_midtrans_down_is_unavailable(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, trouble: str
    ) -> None:
        await self.paid(midtrans, fake)
        if trouble == "http_503":
            fake.fail_with = 503
        else:
            fake.body_error = "500"
        with pytest.raises(ProviderUnavailable):
            await midtrans.refund(TEST, "pay_0001", Money(2_500_000, "IDR"), "re_1")

    async def test_a_fraction_of_a_rupiah_is_refused(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        await self.paid(midtrans, fake)
        with pytest.raises(ProviderRequestRefused):
            await midtrans.refund(TEST, "pay_0001", Money(2_500_001, "IDR"), "re_1")


class TestVerifyWebhook:
    async def notification(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, **overrides: object
    ) -> bytes:
        await midtrans.create_payment(payment())
        return signed(fake.pay("pay_0001", "settlement") | overrides)

    async def test_signed_with_the_test_server_key(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        body = await self.notification(midtrans, fake)
        verified = await midtrans.verify_webhook(TEST, {}, body, NOW)
        assert verified.livemode is False
        assert verified.payload["order_id"] == "pay_0001"

    async def test_the_live_key_says_live(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, credentials: MemoryCredentials
    ) -> None:
        credentials.put(True, LIVE_SERVER_KEY, LIVE_CLIENT_KEY)
        await midtrans.create_payment(payment())
        fake.pay("pay_0001", "settlement")
        body = signed(fake.notification("pay_0001", server_key=LIVE_SERVER_KEY))
        verified = await midtrans.verify_webhook(TEST, {}, body, NOW)
        assert verified.livemode is True
        assert midtrans.to_neutral(verified.payload, livemode=True).livemode is True

    async def test_a_key_of_another_account_is_refused(
        self, midtrans: MidtransProvider, fake: FakeMidtrans
    ) -> None:
        await midtrans.create_payment(payment())
        fake.pay("pay_0001", "settlement")
        body = signed(fake.notification("pay_0001", server_key="SB-Mid-server-SOMEONE-ELSE"))
        with pytest.raises(WebhookRejected) as caught:
            await midtrans.verify_webhook(TEST, {}, body, NOW)
        assert caught.value.reason == "signature_mismatch"

    @pytest.mark.parametrize("amount", ["99000", "99000.0", "990000.00"])
    async def test_a_reformatted_amount_is_refused(
        self, midtrans: MidtransProvider, fake: FakeMidtrans, amount: str
    ) -> None:
        body = await self.notification(midtrans, fake, gross_amount=amount)
        with pytest.raises(WebhookRejected, match="signature_key does not match"):
            await midtrans.verify_webhook(TEST, {}, body, NOW)

    async def test_a_changed_status_is_refused(self, midtrans: MidtransProvider, fake: FakeMidtrans) -> None:
        await midtrans.create_payment(payment())
        fake.pay("pay_0001", "pending")
        body = signed(fake.notification("pay_0001", status_code="200", transaction_status="settlement"))
        with pytest.raises(WebhookRejected):
            await midtrans.verify_webhook(TEST, {}, body, NOW)

    async def test_no_server_key_refuses_everything(self, fake: FakeMidtrans) -> None:
        http = ProviderHttp(timeout=5, transport=fake.transport())
        adapter = MidtransProvider(make_settings(), MemoryCredentials(), http)
        await MidtransProvider(make_settings(), _with_test_keys(), http).create_payment(payment())
        body = signed(fake.pay("pay_0001", "settlement"))
        with pytest.raises(WebhookRejected) as caught:
            await adapter.verify_webhook(TEST, {}, body, NOW)
        assert caught.value.reason == "webhook_secret_missing"
        await http.aclose()

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[]",
            b"\xff\xfe",
            json.dumps({"order_id": "pay_1", "status_code": 200, "gross_amount": "1.00"}).encode(),
            json.dumps({"order_id": "pay_1", "status_code": "200", "gross_amount": 99000}).encode(),
        ],
    )
    async def test_malformed_bodies_are_refused(self, midtrans: MidtransProvider, body: bytes) -> None:
        with pytest.raises(WebhookRejected) as caught:
            await midtrans.verify_webhook(TEST, {}, body, NOW)
        assert caught.value.reason == "malformed_body"


class TestToNeutral:
    def test_a_settlement(self, midtrans: MidtransProvider) -> None:
        event = midtrans.to_neutral(
            {
                "order_id": "pay_1",
                "transaction_id": "tx-1",
                "transaction_status": "settlement",
                "fraud_status": "accept",
                "status_code": "200",
                "gross_amount": "99000.00",
                "currency": "IDR",
            },
            livemode=False,
        )
        assert event.kind is NeutralKind.PAYMENT_SUCCEEDED
        assert (event.payment_ref, event.merchant_reference) == ("pay_1", "pay_1")
        assert event.amount == Money(9_900_000, "IDR")
        assert event.provider_event_id == "tx-1:settlement:accept:200"

    def test_a_partial_refund_of_ours(self, midtrans: MidtransProvider) -> None:
        event = midtrans.to_neutral(
            {
                "order_id": "pay_1",
                "transaction_id": "tx-1",
                "transaction_status": "partial_refund",
                "status_code": "200",
                "gross_amount": "99000.00",
                "refund_amount": "30000.00",
                "refunds": [
                    {"refund_chargeback_id": 7, "refund_amount": "10000.00", "refund_key": "re_A"},
                    {"refund_chargeback_id": 8, "refund_amount": "20000.00", "refund_key": "re_B"},
                ],
            },
            livemode=False,
        )
        assert event.kind is NeutralKind.REFUND_SUCCEEDED
        assert (event.refund_ref, event.merchant_reference) == ("8", "re_B")
        assert event.amount == Money(2_000_000, "IDR")

    def test_an_unknown_status_is_ignored_not_an_error(self, midtrans: MidtransProvider) -> None:
        event = midtrans.to_neutral({"order_id": "pay_1", "transaction_status": "brand_new"}, livemode=False)
        assert event.kind is NeutralKind.IGNORED


def _with_test_keys() -> MemoryCredentials:
    source = MemoryCredentials()
    source.put(False, SERVER_KEY, CLIENT_KEY)
    return source
