"""The adapter against the fake: orders, captures, refunds, tokens, errors, credentials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paycore.money import Money
from paycore.payments.providers.base import (
    PaymentRequest,
    ProviderAccount,
    ProviderNotConfigured,
    ProviderPaymentState,
    ProviderRequestRefused,
    ProviderUnavailable,
    RefundState,
)
from paycore.payments.providers.paypal import PayPalCredentials, PayPalProvider
from tests.providers.paypal.conftest import TENANT, MemoryCredentials
from tests.providers.paypal.fake import API_HOST, CLIENT_SECRET, LIVE_API_HOST, FakePayPal

ACCOUNT = ProviderAccount(tenant_id=TENANT, tenant_slug="shop", livemode=False)


EUR_25 = Money(2500, "EUR")


def payment(amount: Money = EUR_25, **extra: str) -> PaymentRequest:
    return PaymentRequest(
        account=ACCOUNT,
        attempt_id="pay_attempt1",
        order_id="ord_1",
        order_number="1001",
        amount=amount,
        customer_email="ada@example.com",
        **extra,  # type: ignore[arg-type]
    )


class TestCreatePayment:
    async def test_order_created_with_our_ids_and_exact_amount(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        session = await adapter.create_payment(payment(return_url="https://shop.example/back"))
        (made,) = fake.create_requests
        assert made["request_id"] == "pay_attempt1"
        unit = made["body"]["purchase_units"][0]
        assert unit["amount"] == {"currency_code": "EUR", "value": "25.00"}
        assert unit["custom_id"] == "pay_attempt1"
        assert made["body"]["intent"] == "CAPTURE"
        context = made["body"]["payment_source"]["paypal"]["experience_context"]
        assert context["return_url"] == context["cancel_url"] == "https://shop.example/back"
        assert session.provider_ref in fake.orders
        assert (
            session.redirect_url == f"https://www.sandbox.paypal.com/checkoutnow?token={session.provider_ref}"
        )
        assert session.client_data == {"paypal_order_id": session.provider_ref}

    async def test_return_falls_back_to_the_public_url(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        await adapter.create_payment(payment())
        context = fake.create_requests[0]["body"]["payment_source"]["paypal"]["experience_context"]
        assert context["return_url"] == "http://paycore.test"

    async def test_retry_with_the_same_attempt_makes_one_order(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        first = await adapter.create_payment(payment())
        second = await adapter.create_payment(payment())
        assert first.provider_ref == second.provider_ref
        assert len(fake.orders) == 1

    @pytest.mark.parametrize(
        ("amount", "value"),
        [
            (Money(1, "EUR"), "0.01"),
            (Money(123456789, "USD"), "1234567.89"),
            (Money(2500, "JPY"), "2500"),
            (Money(1234, "KWD"), "1.234"),
            (Money(150000, "HUF"), "1500"),
        ],
    )
    async def test_amounts_in_each_currencys_units(
        self, adapter: PayPalProvider, fake: FakePayPal, amount: Money, value: str
    ) -> None:
        await adapter.create_payment(payment(amount))
        assert fake.create_requests[0]["body"]["purchase_units"][0]["amount"]["value"] == value

    async def test_fraction_of_a_whole_unit_currency_is_refused_not_rounded(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        with pytest.raises(ProviderRequestRefused, match="whole units"):
            await adapter.create_payment(payment(Money(150050, "HUF")))
        assert fake.create_requests == []

    async def test_paypal_down_is_unavailable(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        fake.unavailable.add("orders")
        with pytest.raises(ProviderUnavailable):
            await adapter.create_payment(payment())

    async def test_not_configured(self, adapter: PayPalProvider, accounts: MemoryCredentials) -> None:
        accounts.accounts.clear()
        with pytest.raises(ProviderNotConfigured):
            await adapter.check_ready(ACCOUNT)
        with pytest.raises(ProviderNotConfigured):
            await adapter.create_payment(payment())


class TestTokens:
    async def test_one_token_serves_many_calls(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        created = await adapter.create_payment(payment())
        await adapter.fetch_status(ACCOUNT, created.provider_ref)
        await adapter.fetch_status(ACCOUNT, created.provider_ref)
        assert fake.token_requests == 1

    async def test_a_token_near_its_end_is_renewed(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        fake.token_lifetime = 60  # inside the renewal margin: used once, never cached
        created = await adapter.create_payment(payment())
        await adapter.fetch_status(ACCOUNT, created.provider_ref)
        assert fake.token_requests == 2

    async def test_a_revoked_token_is_replaced_once(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        created = await adapter.create_payment(payment())
        fake.tokens.clear()  # PayPal forgot it early
        status = await adapter.fetch_status(ACCOUNT, created.provider_ref)
        assert status.state is ProviderPaymentState.PENDING
        assert fake.token_requests == 2

    async def test_tokens_are_per_mode(
        self, adapter: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        accounts.put(livemode=True)  # the same REST app id in both modes: still two tokens
        live = ProviderAccount(tenant_id=TENANT, tenant_slug="shop", livemode=True)
        created = await adapter.create_payment(payment())
        await adapter.fetch_status(live, created.provider_ref)
        await adapter.fetch_status(ACCOUNT, created.provider_ref)
        await adapter.fetch_status(live, created.provider_ref)
        assert fake.token_requests == 2
        assert fake.hosts == [API_HOST, API_HOST, LIVE_API_HOST, LIVE_API_HOST, API_HOST, LIVE_API_HOST]

    async def test_wrong_secret_is_refused_without_showing_it(
        self, adapter: PayPalProvider, fake: FakePayPal, accounts: MemoryCredentials
    ) -> None:
        accounts.put(client_secret="wrong-secret-value-123")
        with pytest.raises(ProviderRequestRefused) as refused:
            await adapter.create_payment(payment())
        assert "wrong-secret-value-123" not in str(refused.value)
        assert CLIENT_SECRET not in str(refused.value)


class TestCaptureAndStatus:
    async def test_confirm_before_approval_captures_nothing(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        created = await adapter.create_payment(payment())
        status = await adapter.confirm(ACCOUNT, created.provider_ref, {})
        assert status.state is ProviderPaymentState.PENDING
        assert fake.orders[created.provider_ref]["status"] == "PAYER_ACTION_REQUIRED"

    async def test_confirm_captures_an_approved_order(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        created = await adapter.create_payment(payment())
        fake.approve(created.provider_ref)
        status = await adapter.confirm(ACCOUNT, created.provider_ref, {})
        capture = fake.capture_of(created.provider_ref)
        assert status.state is ProviderPaymentState.SUCCEEDED
        assert status.amount == Money(2500, "EUR")
        assert status.charge_ref == capture["id"]
        assert fake.capture_requests == [f"capture-{created.provider_ref}"]

    async def test_second_capture_replays_and_takes_money_once(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        created = await adapter.create_payment(payment())
        fake.approve(created.provider_ref)
        first = await adapter.confirm(ACCOUNT, created.provider_ref, {})
        second = await adapter.capture(ACCOUNT, created.provider_ref)
        assert first == second
        assert len(fake.orders[created.provider_ref]["purchase_units"][0]["payments"]["captures"]) == 1

    async def test_already_captured_elsewhere_reads_the_order(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        created = await adapter.create_payment(payment())
        fake.approve(created.provider_ref)
        fake.capture_elsewhere(created.provider_ref)
        status = await adapter.confirm(ACCOUNT, created.provider_ref, {})
        assert status.state is ProviderPaymentState.SUCCEEDED
        assert status.charge_ref == fake.capture_of(created.provider_ref)["id"]

    @pytest.mark.parametrize(
        ("capture_status", "state"),
        [("PENDING", ProviderPaymentState.PENDING), ("DECLINED", ProviderPaymentState.FAILED)],
    )
    async def test_capture_outcomes(
        self, adapter: PayPalProvider, fake: FakePayPal, capture_status: str, state: ProviderPaymentState
    ) -> None:
        fake.next_capture_status = capture_status
        created = await adapter.create_payment(payment())
        fake.approve(created.provider_ref)
        assert (await adapter.confirm(ACCOUNT, created.provider_ref, {})).state is state

    async def test_settle_captures_an_approved_order_and_fetch_status_only_reads(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        created = await adapter.create_payment(payment())
        assert (await adapter.settle(ACCOUNT, created.provider_ref)).state is ProviderPaymentState.PENDING
        assert fake.capture_requests == []
        fake.approve(created.provider_ref)
        # Reading an approved order (an expired one's, say) never takes the money.
        assert (
            await adapter.fetch_status(ACCOUNT, created.provider_ref)
        ).state is ProviderPaymentState.PENDING
        assert fake.capture_requests == []
        assert (await adapter.settle(ACCOUNT, created.provider_ref)).state is ProviderPaymentState.SUCCEEDED
        assert fake.capture_requests == [f"capture-{created.provider_ref}"]

    async def test_voided_order_is_canceled(self, adapter: PayPalProvider, fake: FakePayPal) -> None:
        created = await adapter.create_payment(payment())
        fake.orders[created.provider_ref]["status"] = "VOIDED"
        assert (
            await adapter.fetch_status(ACCOUNT, created.provider_ref)
        ).state is ProviderPaymentState.CANCELED

    async def test_unknown_order_is_refused(self, adapter: PayPalProvider) -> None:
        with pytest.raises(ProviderRequestRefused, match="RESOURCE_NOT_FOUND"):
            await adapter.fetch_status(ACCOUNT, "NOSUCHORDER1")

    async def test_an_id_that_is_not_paypals_never_reaches_a_url(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        with pytest.raises(ProviderRequestRefused):
            await adapter.fetch_status(ACCOUNT, "../../v1/oauth2/token")
        assert fake.token_requests == 0


class TestRefund:
    async def paid(self, adapter: PayPalProvider, fake: FakePayPal) -> str:
        created = await adapter.create_payment(payment())
        fake.approve(created.provider_ref)
        await adapter.confirm(ACCOUNT, created.provider_ref, {})
        return created.provider_ref

    async def test_refund_on_the_capture_with_our_refund_id(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        order_id = await self.paid(adapter, fake)
        outcome = await adapter.refund(ACCOUNT, order_id, Money(1000, "EUR"), "re_1")
        (asked,) = fake.refund_requests
        assert asked["capture_id"] == fake.capture_of(order_id)["id"]
        assert asked["request_id"] == "re_1"
        assert asked["body"] == {
            "amount": {"currency_code": "EUR", "value": "10.00"},
            "custom_id": "re_1",
            "invoice_id": "re_1",
        }
        assert outcome.state is RefundState.SUCCEEDED
        assert outcome.provider_ref == fake.capture_of(order_id)["refunds"][0]["id"]

    async def test_refund_retried_with_the_same_id_refunds_once(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        order_id = await self.paid(adapter, fake)
        first = await adapter.refund(ACCOUNT, order_id, Money(1000, "EUR"), "re_1")
        second = await adapter.refund(ACCOUNT, order_id, Money(1000, "EUR"), "re_1")
        assert first == second
        assert len(fake.capture_of(order_id)["refunds"]) == 1

    async def test_a_refund_made_after_the_request_id_expired_is_found_not_made_again(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        order_id = await self.paid(adapter, fake)
        first = await adapter.refund(ACCOUNT, order_id, Money(1000, "EUR"), "re_1")
        fake.replays.clear()  # PayPal keeps a PayPal-Request-Id for 6 hours only
        again = await adapter.refund(ACCOUNT, order_id, Money(1000, "EUR"), "re_1")
        assert again == first
        assert len(fake.capture_of(order_id)["refunds"]) == 1
        assert len(fake.refund_requests) == 1  # the second time it only looked

    async def test_refund_over_the_capture_is_refused(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        order_id = await self.paid(adapter, fake)
        with pytest.raises(ProviderRequestRefused, match="REFUND_AMOUNT_EXCEEDED"):
            await adapter.refund(ACCOUNT, order_id, Money(2501, "EUR"), "re_1")

    async def test_refund_of_an_uncaptured_order_fails(
        self, adapter: PayPalProvider, fake: FakePayPal
    ) -> None:
        created = await adapter.create_payment(payment())
        outcome = await adapter.refund(ACCOUNT, created.provider_ref, Money(100, "EUR"), "re_1")
        assert outcome.state is RefundState.FAILED
        assert fake.refund_requests == []


class TestCredentialsModel:
    def test_valid(self) -> None:
        parsed = PayPalCredentials.model_validate(
            {"client_id": "AZabc-123_x", "client_secret": "EKsecret-xyz"}, context={"livemode": False}
        )
        assert parsed.client_secret.get_secret_value() == "EKsecret-xyz"
        assert "EKsecret-xyz" not in repr(parsed)

    @pytest.mark.parametrize(
        "raw",
        [
            {"client_id": "AZabc-123_x"},
            {"client_id": "AZabc 123 <x>", "client_secret": "EKsecret-xyz"},
            {"client_id": "AZabc-123_x", "client_secret": "short"},
            {"client_id": "AZabc-123_x", "client_secret": "EKsecret-xyz", "webhook_id": "X"},
        ],
    )
    def test_refused_without_echoing_values(self, raw: dict[str, str]) -> None:
        with pytest.raises(ValidationError) as refused:
            PayPalCredentials.model_validate(raw, context={"livemode": True})
        messages = " ".join(error["msg"] for error in refused.value.errors())
        assert all(value not in messages for value in raw.values())
