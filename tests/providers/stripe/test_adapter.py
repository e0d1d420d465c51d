"""The adapter against the fake Stripe API, through the real SDK and the test transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from paycore.money import Money
from paycore.payments.providers.base import (
    PaymentRequest,
    ProviderAccount,
    ProviderNotConfigured,
    ProviderPaymentState,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundState,
    WebhookRejected,
)
from paycore.payments.providers.common import ProviderHttp
from paycore.payments.providers.stripe import StripeProvider
from tests.conftest import make_settings
from tests.providers.stripe.conftest import (
    CREDENTIALS,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    MemoryCredentials,
)
from tests.providers.stripe.fake import FakeStripe, signed
from tests.providers.support import HostRouter

ACCOUNT = ProviderAccount(tenant_id="ten_1", tenant_slug="shop", livemode=False)


def payment_request(
    attempt_id: str = "pay_attempt_1", amount: int = 2500, currency: str = "EUR"
) -> PaymentRequest:
    return PaymentRequest(
        account=ACCOUNT,
        attempt_id=attempt_id,
        order_id="ord_1",
        order_number="1001",
        amount=Money(amount, currency),
        customer_email="ada@example.com",
    )


@pytest.fixture
def credentials() -> MemoryCredentials:
    source = MemoryCredentials()
    source.put(livemode=False, values=dict(CREDENTIALS), webhook_secrets=(WEBHOOK_SECRET,))
    return source


@pytest.fixture
async def adapter(fake_stripe: FakeStripe, credentials: MemoryCredentials) -> AsyncIterator[StripeProvider]:
    http = ProviderHttp(timeout=5, transport=HostRouter({"api.stripe.com": fake_stripe.app}))
    try:
        yield StripeProvider(make_settings(), credentials, http, max_network_retries=0)
    finally:
        await http.aclose()


class TestCreatePayment:
    async def test_a_payment_intent_for_the_attempt_with_our_idempotency_key(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        session = await adapter.create_payment(payment_request())
        intent = fake_stripe.intents[session.provider_ref]
        assert session.redirect_url is None
        assert session.client_data == {
            "client_secret": intent["client_secret"],
            "publishable_key": PUBLISHABLE_KEY,
        }
        assert (intent["amount"], intent["currency"]) == (2500, "eur")
        assert intent["metadata"] == {
            "paycore_attempt": "pay_attempt_1",
            "paycore_tenant": "ten_1",
            "paycore_order": "ord_1",
            "paycore_order_number": "1001",
        }
        assert [seen.idempotency_key for seen in fake_stripe.seen] == ["pay_attempt_1"]

    async def test_asking_again_for_the_same_attempt_makes_no_second_intent(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        first = await adapter.create_payment(payment_request())
        again = await adapter.create_payment(payment_request())
        assert again == first
        assert len(fake_stripe.intents) == 1

    async def test_zero_decimal_amounts_go_as_they_are(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        session = await adapter.create_payment(payment_request(amount=1500, currency="JPY"))
        assert (
            fake_stripe.intents[session.provider_ref]["amount"],
            fake_stripe.intents[session.provider_ref]["currency"],
        ) == (1500, "jpy")

    @pytest.mark.parametrize(("amount", "currency"), [(10000, "ISK"), (5000, "MGA"), (1005, "KWD")])
    async def test_currencies_whose_unit_differs_at_stripe_are_refused_before_asking(
        self, adapter: StripeProvider, fake_stripe: FakeStripe, amount: int, currency: str
    ) -> None:
        with pytest.raises(ProviderRequestRefused):
            await adapter.create_payment(payment_request(amount=amount, currency=currency))
        assert fake_stripe.seen == []

    async def test_a_wrong_key_is_refused_and_the_error_never_shows_it(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        fake_stripe.secret_key = "sk_test_someone_else_entirely"
        with pytest.raises(ProviderRequestRefused) as refused:
            await adapter.create_payment(payment_request())
        assert "401" in str(refused.value)
        assert "Invalid API Key" in str(refused.value)
        assert SECRET_KEY not in str(refused.value)
        assert SECRET_KEY[-4:] not in str(refused.value)  # even Stripe's masked echo is scrubbed
        assert refused.value.__cause__ is None and refused.value.__suppress_context__

    @pytest.mark.parametrize("status", [500, 503, 429, 409])
    async def test_server_trouble_is_unavailable(
        self, adapter: StripeProvider, fake_stripe: FakeStripe, status: int
    ) -> None:
        fake_stripe.fail_next = [status]
        with pytest.raises(ProviderUnavailable):
            await adapter.create_payment(payment_request())

    async def test_an_unreachable_stripe_is_unavailable(self, credentials: MemoryCredentials) -> None:
        http = ProviderHttp(timeout=5, transport=HostRouter({}))
        adapter = StripeProvider(make_settings(), credentials, http, max_network_retries=0)
        with pytest.raises(ProviderUnavailable):
            await adapter.create_payment(payment_request())
        await http.aclose()

    async def test_the_sdk_retries_a_500_with_the_same_idempotency_key(
        self, fake_stripe: FakeStripe, credentials: MemoryCredentials, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from paycore.payments.providers.stripe_sdk import PaycoreHttpClient

        slept: list[float] = []

        async def no_wait(seconds: float) -> None:
            slept.append(seconds)

        monkeypatch.setattr(PaycoreHttpClient, "sleep_async", lambda self, seconds: no_wait(seconds))
        http = ProviderHttp(timeout=5, transport=HostRouter({"api.stripe.com": fake_stripe.app}))
        adapter = StripeProvider(make_settings(), credentials, http)  # the registry's default: one retry
        fake_stripe.fail_next = [500]
        session = await adapter.create_payment(payment_request())
        await http.aclose()
        assert [seen.idempotency_key for seen in fake_stripe.seen] == ["pay_attempt_1", "pay_attempt_1"]
        assert len(slept) == 1
        assert list(fake_stripe.intents) == [session.provider_ref]

    async def test_other_parameters_under_the_same_key_are_refused(self, adapter: StripeProvider) -> None:
        await adapter.create_payment(payment_request())
        with pytest.raises(ProviderRequestRefused, match="idempotency"):
            await adapter.create_payment(payment_request(amount=9900))


class TestStatus:
    async def test_the_intent_states(self, adapter: StripeProvider, fake_stripe: FakeStripe) -> None:
        ref = (await adapter.create_payment(payment_request())).provider_ref
        assert (await adapter.fetch_status(ACCOUNT, ref)).state is ProviderPaymentState.PENDING
        fake_stripe.decline(ref)  # declined, but still payable with another card
        assert (await adapter.fetch_status(ACCOUNT, ref)).state is ProviderPaymentState.PENDING
        fake_stripe.pay(ref)
        status = await adapter.confirm(ACCOUNT, ref, {"payment_intent": ref})
        assert status.state is ProviderPaymentState.SUCCEEDED
        assert status.amount == Money(2500, "EUR")
        assert status.charge_ref == fake_stripe.intents[ref]["latest_charge"]
        fake_stripe.intents[ref]["status"] = "canceled"
        assert (await adapter.fetch_status(ACCOUNT, ref)).state is ProviderPaymentState.CANCELED

    async def test_an_unknown_intent_is_refused(self, adapter: StripeProvider) -> None:
        with pytest.raises(ProviderRequestRefused, match="resource_missing"):
            await adapter.fetch_status(ACCOUNT, "pi_nope")

    async def test_no_credentials_for_the_mode_is_not_configured(self, adapter: StripeProvider) -> None:
        live = ProviderAccount(tenant_id="ten_1", tenant_slug="shop", livemode=True)
        with pytest.raises(ProviderNotConfigured):
            await adapter.check_ready(live)
        with pytest.raises(ProviderNotConfigured):
            await adapter.fetch_status(live, "pi_1")
        await adapter.check_ready(ACCOUNT)


class TestRefund:
    async def test_a_refund_with_our_id_as_key_and_in_metadata(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        ref = (await adapter.create_payment(payment_request())).provider_ref
        fake_stripe.pay(ref)
        outcome = await adapter.refund(ACCOUNT, ref, Money(1000, "EUR"), "re_paycore_1")
        assert outcome.state is RefundState.SUCCEEDED
        refund = fake_stripe.refunds[outcome.provider_ref or ""]
        assert (refund["amount"], refund["metadata"]["paycore_refund"]) == (1000, "re_paycore_1")
        assert fake_stripe.seen[-1].idempotency_key == "re_paycore_1"

    async def test_asked_again_after_stripe_forgot_the_key_it_finds_the_refund_instead_of_making_another(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        ref = (await adapter.create_payment(payment_request())).provider_ref
        fake_stripe.pay(ref)
        fake_stripe.refund_status = "pending"
        first = await adapter.refund(ACCOUNT, ref, Money(1000, "EUR"), "re_paycore_1")
        assert first.state is RefundState.PENDING
        fake_stripe._replies.clear()  # keys pruned after 24 h
        again = await adapter.refund(ACCOUNT, ref, Money(1000, "EUR"), "re_paycore_1")
        assert again == first
        assert len(fake_stripe.refunds) == 1

    async def test_the_lookup_pages_through_many_refunds(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        ref = (await adapter.create_payment(payment_request(amount=50000))).provider_ref
        fake_stripe.pay(ref)
        ours = await adapter.refund(ACCOUNT, ref, Money(1, "EUR"), "re_paycore_first")
        for _ in range(150):
            fake_stripe.refund_at_stripe(ref, 1)
        fake_stripe._replies.clear()
        again = await adapter.refund(ACCOUNT, ref, Money(1, "EUR"), "re_paycore_first")
        assert again.provider_ref == ours.provider_ref
        assert len(fake_stripe.refunds) == 151

    async def test_more_than_is_left_is_refused(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        ref = (await adapter.create_payment(payment_request())).provider_ref
        fake_stripe.pay(ref)
        with pytest.raises(ProviderRequestRefused, match="amount_too_large"):
            await adapter.refund(ACCOUNT, ref, Money(2501, "EUR"), "re_paycore_1")


class TestVerifyWebhook:
    NOW = datetime(2025, 1, 1, tzinfo=UTC)

    def event_body(self, fake: FakeStripe, secret: str, **extra: int) -> tuple[bytes, dict[str, str]]:
        event = fake.event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
        body, headers = signed(event, secret, timestamp=int(self.NOW.timestamp()) + extra.get("shift", 0))
        return body, {key.lower(): value for key, value in headers.items()}

    async def test_verified_by_the_test_secret_says_test_mode(
        self, adapter: StripeProvider, fake_stripe: FakeStripe
    ) -> None:
        body, headers = self.event_body(fake_stripe, WEBHOOK_SECRET)
        verified = await adapter.verify_webhook(ACCOUNT, headers, body, self.NOW)
        assert verified.livemode is False
        assert verified.payload["type"] == "payment_intent.succeeded"

    async def test_the_live_secret_says_live_mode(
        self, adapter: StripeProvider, fake_stripe: FakeStripe, credentials: MemoryCredentials
    ) -> None:
        credentials.put(livemode=True, values={}, webhook_secrets=("whsec_live_secret_1",))
        body, headers = self.event_body(fake_stripe, "whsec_live_secret_1")
        assert (await adapter.verify_webhook(ACCOUNT, headers, body, self.NOW)).livemode is True

    @pytest.mark.parametrize(("shift", "reason"), [(-301, "stale_timestamp"), (301, "future_timestamp")])
    async def test_out_of_tolerance_is_refused(
        self, adapter: StripeProvider, fake_stripe: FakeStripe, shift: int, reason: str
    ) -> None:
        body, headers = self.event_body(fake_stripe, WEBHOOK_SECRET, shift=shift)
        with pytest.raises(WebhookRejected) as refused:
            await adapter.verify_webhook(ACCOUNT, headers, body, self.NOW)
        assert refused.value.reason == reason

    async def test_no_webhook_secret_refuses_everything(
        self, adapter: StripeProvider, fake_stripe: FakeStripe, credentials: MemoryCredentials
    ) -> None:
        credentials.put(livemode=False, values=dict(CREDENTIALS))
        body, headers = self.event_body(fake_stripe, WEBHOOK_SECRET)
        with pytest.raises(WebhookRejected) as refused:
            await adapter.verify_webhook(ACCOUNT, headers, body, self.NOW)
        assert refused.value.reason == "webhook_secret_missing"

    @pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"type": "x"}', b'{"id": "evt_1"}'])
    async def test_a_signed_body_that_is_no_event_is_refused(
        self, adapter: StripeProvider, body: bytes
    ) -> None:
        from paycore.payments.providers.stripe_signing import signature_header

        headers = {"stripe-signature": signature_header(WEBHOOK_SECRET, int(self.NOW.timestamp()), body)}
        with pytest.raises(WebhookRejected) as refused:
            await adapter.verify_webhook(ACCOUNT, headers, body, self.NOW)
        assert refused.value.reason == "malformed_body"


def test_the_sdk_never_logs_bodies_even_when_paycore_runs_at_debug() -> None:
    """The SDK logs request and response bodies (client secrets) at DEBUG on the `stripe` logger."""
    import logging

    import paycore.payments.providers.stripe_sdk  # noqa: F401 (sets the level on import)

    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.DEBUG)
    try:
        assert not logging.getLogger("stripe").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(before)
