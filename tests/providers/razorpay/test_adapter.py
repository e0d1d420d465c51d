"""The adapter against the fake Razorpay API, without a database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from paycore.money import Money
from paycore.payments.providers.base import (
    ConfirmationRejected,
    PaymentRequest,
    ProviderNotConfigured,
    ProviderPaymentState,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundState,
    WebhookRejected,
)
from paycore.payments.providers.razorpay import RazorpayProvider
from tests.providers.razorpay.conftest import ACCOUNT, WEBHOOK_SECRET, StaticCredentials
from tests.providers.razorpay.fake import FakeRazorpay, sign

NOW = datetime(2024, 1, 1, tzinfo=UTC)
PRICE = Money(49900, "INR")


def request(attempt_id: str = "pay_attempt0001", amount: Money = PRICE) -> PaymentRequest:
    return PaymentRequest(
        account=ACCOUNT,
        attempt_id=attempt_id,
        order_id="ord_1",
        order_number="ABCDE-FGHJK",
        amount=amount,
        customer_email="ada@example.com",
    )


class TestCreatePayment:
    async def test_creates_an_order_in_minor_units(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        session = await adapter.create_payment(request())
        order = fake.orders[session.provider_ref]
        assert (order["amount"], order["currency"], order["receipt"]) == (49900, "INR", "pay_attempt0001")
        assert order["notes"] == {"paycore_attempt": "pay_attempt0001", "tenant": "shop", "order": "ord_1"}
        assert session.redirect_url is None
        assert session.client_data == {
            "key_id": fake.key_id,
            "razorpay_order_id": session.provider_ref,
            "amount": 49900,
            "currency": "INR",
        }
        assert fake.key_secret not in json.dumps(session.client_data)

    async def test_a_retry_reuses_the_order_of_the_same_attempt(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        longer = await adapter.create_payment(request("pay_attempt0001X"))
        # Razorpay's receipt filter matches on "contains": this one must not reuse the order above.
        first = await adapter.create_payment(request())
        assert first.provider_ref != longer.provider_ref
        again = await adapter.create_payment(request())
        assert again.provider_ref == first.provider_ref
        assert fake.calls_to("POST", "/v1/orders") == 2

    async def test_three_decimal_amounts_that_would_need_rounding_are_refused(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        with pytest.raises(ProviderRequestRefused):
            await adapter.create_payment(request(amount=Money(1005, "KWD")))
        assert fake.calls == []
        session = await adapter.create_payment(request(amount=Money(1010, "KWD")))
        assert fake.orders[session.provider_ref]["amount"] == 1010

    async def test_wrong_key_is_refused_without_the_secret_in_the_message(
        self, adapter: RazorpayProvider, fake: FakeRazorpay, credentials: StaticCredentials
    ) -> None:
        wrong = FakeRazorpay(key_secret="a_wrong_secret_value_42")
        credentials.put(wrong)
        with pytest.raises(ProviderRequestRefused) as refused:
            await adapter.create_payment(request())
        assert "401" in str(refused.value)
        assert wrong.key_secret not in str(refused.value)
        assert fake.orders == {}

    @pytest.mark.parametrize("status", [500, 502, 503, 429])
    async def test_server_trouble_is_unavailable(
        self, adapter: RazorpayProvider, fake: FakeRazorpay, status: int
    ) -> None:
        fake.fail_next.append(status)
        with pytest.raises(ProviderUnavailable):
            await adapter.create_payment(request())

    async def test_unreachable_is_unavailable(self, credentials: StaticCredentials) -> None:
        from paycore.payments.providers.common import ProviderHttp
        from tests.conftest import make_settings
        from tests.providers.support import HostRouter

        http = ProviderHttp(timeout=5, transport=HostRouter({}))
        with pytest.raises(ProviderUnavailable) as unavailable:
            await RazorpayProvider(make_settings(), credentials, http).create_payment(request())
        assert "ConnectError" in str(unavailable.value)
        await http.aclose()

    async def test_no_credentials_is_not_configured(self, adapter: RazorpayProvider) -> None:
        from dataclasses import replace

        with pytest.raises(ProviderNotConfigured):
            await adapter.check_ready(replace(ACCOUNT, livemode=True))


class TestConfirm:
    async def test_a_signed_captured_payment_succeeds(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        session = await adapter.create_payment(request())
        payment = fake.pay(session.provider_ref)
        status = await adapter.confirm(ACCOUNT, session.provider_ref, fake.checkout_response(payment))
        assert status.state is ProviderPaymentState.SUCCEEDED
        assert status.amount == Money(49900, "INR")
        assert status.charge_ref == payment["id"]

    async def test_signed_but_only_authorized_is_pending(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        session = await adapter.create_payment(request())
        payment = fake.pay(session.provider_ref, status="authorized")
        status = await adapter.confirm(ACCOUNT, session.provider_ref, fake.checkout_response(payment))
        assert status.state is ProviderPaymentState.PENDING

    async def test_refusals_ask_razorpay_nothing(self, adapter: RazorpayProvider, fake: FakeRazorpay) -> None:
        session = await adapter.create_payment(request())
        other = await adapter.create_payment(request("pay_attempt0002"))
        payment = fake.pay(session.provider_ref)
        good = fake.checkout_response(payment)
        forged = [
            {},
            {**good, "razorpay_signature": sign("guessed_secret", b"x")},
            {**good, "razorpay_signature": good["razorpay_signature"].upper()},
            {key: value for key, value in good.items() if key != "razorpay_signature"},
            {**good, "razorpay_payment_id": "../orders"},
            # A genuine signature for another order of the same shop, replayed on this one.
            fake.checkout_response(fake.pay(other.provider_ref)),
        ]
        fake.calls.clear()
        for params in forged:
            with pytest.raises(ConfirmationRejected):
                await adapter.confirm(ACCOUNT, session.provider_ref, params)
        assert fake.calls == []

    async def test_a_payment_of_another_order_is_refused_by_the_api_check(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        session = await adapter.create_payment(request())
        other = await adapter.create_payment(request("pay_attempt0002"))
        foreign = fake.pay(other.provider_ref)
        # Signed for (this order, a payment of another order): only Razorpay's answer can tell.
        params = {
            "razorpay_order_id": session.provider_ref,
            "razorpay_payment_id": foreign["id"],
            "razorpay_signature": sign(fake.key_secret, f"{session.provider_ref}|{foreign['id']}".encode()),
        }
        with pytest.raises(ConfirmationRejected):
            await adapter.confirm(ACCOUNT, session.provider_ref, params)


class TestFetchStatus:
    async def test_states(self, adapter: RazorpayProvider, fake: FakeRazorpay) -> None:
        order_id = (await adapter.create_payment(request())).provider_ref
        assert (await adapter.fetch_status(ACCOUNT, order_id)).state is ProviderPaymentState.PENDING
        failed = fake.pay(order_id, status="failed")
        # A failed payment does not end the order: the customer may pay inside it again.
        assert (await adapter.fetch_status(ACCOUNT, order_id)).state is ProviderPaymentState.PENDING
        fake.capture(failed["id"])
        status = await adapter.fetch_status(ACCOUNT, order_id)
        assert (status.state, status.amount, status.charge_ref) == (
            ProviderPaymentState.SUCCEEDED,
            Money(49900, "INR"),
            failed["id"],
        )

    async def test_an_order_paid_is_a_signal_on_its_own(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        order_id = (await adapter.create_payment(request())).provider_ref
        fake.orders[order_id].update(status="paid", amount_paid=49900)
        status = await adapter.fetch_status(ACCOUNT, order_id)
        assert (status.state, status.amount) == (ProviderPaymentState.SUCCEEDED, Money(49900, "INR"))

    async def test_an_auto_refunded_uncaptured_payment_is_not_paid(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        order_id = (await adapter.create_payment(request())).provider_ref
        payment = fake.pay(order_id, status="authorized")
        payment.update(status="refunded", captured=False)
        assert (await adapter.fetch_status(ACCOUNT, order_id)).state is ProviderPaymentState.PENDING

    async def test_a_reference_that_is_not_an_order_id_is_refused_before_any_call(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        with pytest.raises(ProviderRequestRefused):
            await adapter.fetch_status(ACCOUNT, "order_1/../../payments")
        assert fake.calls == []


class TestRefund:
    async def paid_order(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> tuple[str, dict[str, object]]:
        order_id = (await adapter.create_payment(request())).provider_ref
        fake.pay(order_id, status="failed")
        return order_id, fake.pay(order_id)

    async def test_refunds_the_captured_payment_with_our_receipt(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        order_id, payment = await self.paid_order(adapter, fake)
        outcome = await adapter.refund(ACCOUNT, order_id, Money(10000, "INR"), "re_0001")
        (refund,) = fake.refunds.values()
        assert (refund["payment_id"], refund["amount"], refund["receipt"]) == (
            payment["id"],
            10000,
            "re_0001",
        )
        assert refund["notes"] == {"paycore_refund": "re_0001"}
        assert (outcome.provider_ref, outcome.state) == (refund["id"], RefundState.SUCCEEDED)

    async def test_a_retry_after_a_lost_response_does_not_refund_twice(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        order_id, _ = await self.paid_order(adapter, fake)
        fake.lose_next_refund_response = True
        with pytest.raises(ProviderUnavailable):
            await adapter.refund(ACCOUNT, order_id, Money(10000, "INR"), "re_0001")
        outcome = await adapter.refund(ACCOUNT, order_id, Money(10000, "INR"), "re_0001")
        assert len(fake.refunds) == 1
        assert outcome.provider_ref == next(iter(fake.refunds))
        # Another refund id is another refund.
        await adapter.refund(ACCOUNT, order_id, Money(5000, "INR"), "re_0002")
        assert len(fake.refunds) == 2

    @pytest.mark.parametrize(
        ("status", "state"), [("pending", RefundState.PENDING), ("failed", RefundState.FAILED)]
    )
    async def test_asynchronous_states(
        self, adapter: RazorpayProvider, fake: FakeRazorpay, status: str, state: RefundState
    ) -> None:
        order_id, _ = await self.paid_order(adapter, fake)
        fake.refund_status = status
        assert (await adapter.refund(ACCOUNT, order_id, Money(100, "INR"), "re_1")).state is state

    async def test_nothing_captured_or_too_much_is_refused(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        order_id = (await adapter.create_payment(request())).provider_ref
        with pytest.raises(ProviderRequestRefused):
            await adapter.refund(ACCOUNT, order_id, Money(100, "INR"), "re_1")
        fake.pay(order_id)
        with pytest.raises(ProviderRequestRefused):
            await adapter.refund(ACCOUNT, order_id, Money(49901, "INR"), "re_2")
        assert fake.refunds == {}


class TestVerifyWebhook:
    async def test_the_event_id_is_the_signed_body_hash_not_the_unsigned_header(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        # Was: the x-razorpay-event-id header became the inbox id. The signature does not cover
        # it, so a replay under a new header was a new event (issue 11, finding 12).
        body, headers = fake.webhook("payment.captured", secret=WEBHOOK_SECRET, event_id="evt_Header01")
        verified = await adapter.verify_webhook(ACCOUNT, headers, body, NOW)
        replayed = await adapter.verify_webhook(
            ACCOUNT, {**headers, "x-razorpay-event-id": "evt_Invented2"}, body, NOW
        )
        assert verified.livemode is False
        expected = "sha256:" + hashlib.sha256(body).hexdigest()
        assert verified.payload["paycore_event_id"] == expected
        assert replayed.payload["paycore_event_id"] == expected
        assert adapter.to_neutral(verified.payload, livemode=False).provider_event_id == expected

    async def test_mode_is_the_one_whose_secret_verified(
        self, adapter: RazorpayProvider, fake: FakeRazorpay, credentials: StaticCredentials
    ) -> None:
        credentials.put(fake, livemode=True, webhook_secrets=("whsec_live_secret_01",))
        body, headers = fake.webhook("payment.captured", secret="whsec_live_secret_01")
        assert (await adapter.verify_webhook(ACCOUNT, headers, body, NOW)).livemode is True

    async def test_the_old_secret_verifies_during_a_rotation(
        self, adapter: RazorpayProvider, fake: FakeRazorpay, credentials: StaticCredentials
    ) -> None:
        credentials.put(fake, webhook_secrets=("whsec_new_secret_01", WEBHOOK_SECRET))
        body, headers = fake.webhook("payment.captured", secret=WEBHOOK_SECRET)
        assert (await adapter.verify_webhook(ACCOUNT, headers, body, NOW)).payload[
            "event"
        ] == "payment.captured"

    async def test_refusals(self, adapter: RazorpayProvider, fake: FakeRazorpay) -> None:
        body, headers = fake.webhook("payment.captured", secret=WEBHOOK_SECRET)
        cases = {
            "signature_missing": (body, {k: v for k, v in headers.items() if k != "X-Razorpay-Signature"}),
            "signature_mismatch": (body + b" ", headers),
        }
        for reason, (sent, sent_headers) in cases.items():
            with pytest.raises(WebhookRejected) as rejected:
                await adapter.verify_webhook(ACCOUNT, sent_headers, sent, NOW)
            assert rejected.value.reason == reason
        not_an_event = b'{"entity":"payment"}'
        with pytest.raises(WebhookRejected) as rejected:
            await adapter.verify_webhook(
                ACCOUNT, {"x-razorpay-signature": sign(WEBHOOK_SECRET, not_an_event)}, not_an_event, NOW
            )
        assert rejected.value.reason == "malformed_body"

    async def test_no_webhook_secret_refuses_everything(
        self, adapter: RazorpayProvider, fake: FakeRazorpay, credentials: StaticCredentials
    ) -> None:
        credentials.put(fake)  # keys, but no webhook secret
        body, headers = fake.webhook("payment.captured", secret=WEBHOOK_SECRET)
        with pytest.raises(WebhookRejected) as rejected:
            await adapter.verify_webhook(ACCOUNT, headers, body, NOW)
        assert rejected.value.reason == "webhook_secret_missing"

    async def test_missing_event_id_falls_back_to_the_body_hash(
        self, adapter: RazorpayProvider, fake: FakeRazorpay
    ) -> None:
        body, headers = fake.webhook("payment.captured", secret=WEBHOOK_SECRET)
        del headers["x-razorpay-event-id"]
        first = await adapter.verify_webhook(ACCOUNT, headers, body, NOW)
        again = await adapter.verify_webhook(ACCOUNT, headers, body, NOW)
        assert first.payload["paycore_event_id"].startswith("sha256:")
        assert first.payload["paycore_event_id"] == again.payload["paycore_event_id"]
