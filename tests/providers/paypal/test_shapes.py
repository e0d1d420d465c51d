"""PayPal's JSON in paycore's words, pure: events, amounts, order states."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.money import Money
from paycore.payments.providers.base import NeutralKind, ProviderPaymentState
from paycore.payments.providers.paypal_shapes import event_to_neutral, from_paypal_amount, order_to_status

CAPTURE = {
    "id": "CAP123",
    "status": "COMPLETED",
    "amount": {"currency_code": "EUR", "value": "25.00"},
    "custom_id": "pay_attempt1",
    "supplementary_data": {"related_ids": {"order_id": "ORDER1"}},
}
REFUND = {
    "id": "RF123",
    "status": "COMPLETED",
    "amount": {"currency_code": "EUR", "value": "10.00"},
    "custom_id": "re_1",
    "supplementary_data": {"related_ids": {"order_id": "ORDER1", "capture_id": "CAP123"}},
}


def event(event_type: str, resource: Any) -> dict[str, Any]:
    return {"id": "WH-9", "event_type": event_type, "resource": resource}


class TestEvents:
    @pytest.mark.parametrize(
        ("event_type", "kind"),
        [
            ("PAYMENT.CAPTURE.COMPLETED", NeutralKind.PAYMENT_SUCCEEDED),
            ("PAYMENT.CAPTURE.PENDING", NeutralKind.PAYMENT_PENDING),
            ("PAYMENT.CAPTURE.DENIED", NeutralKind.PAYMENT_FAILED),
            ("PAYMENT.CAPTURE.DECLINED", NeutralKind.PAYMENT_FAILED),
        ],
    )
    def test_capture_events(self, event_type: str, kind: NeutralKind) -> None:
        neutral = event_to_neutral(event(event_type, CAPTURE), livemode=True)
        assert neutral.kind is kind
        assert neutral.provider_event_id == "WH-9"
        assert neutral.type == event_type
        assert neutral.livemode is True
        assert neutral.payment_ref == "ORDER1"
        assert neutral.merchant_reference == "pay_attempt1"
        assert neutral.amount == Money(2500, "EUR")
        assert neutral.refund_ref is None

    def test_denial_reason(self) -> None:
        denied = {
            **CAPTURE,
            "status": "DECLINED",
            "status_details": {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"},
        }
        neutral = event_to_neutral(event("PAYMENT.CAPTURE.DENIED", denied), livemode=False)
        assert neutral.failure_reason == "DECLINED_BY_RISK_FRAUD_FILTERS"

    @pytest.mark.parametrize("event_type", ["PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"])
    def test_refund_events(self, event_type: str) -> None:
        neutral = event_to_neutral(event(event_type, REFUND), livemode=False)
        assert neutral.kind is NeutralKind.REFUND_SUCCEEDED
        assert (neutral.refund_ref, neutral.merchant_reference, neutral.payment_ref) == (
            "RF123",
            "re_1",
            "ORDER1",
        )
        assert neutral.amount == Money(1000, "EUR")

    def test_refund_matched_by_invoice_id_when_no_custom_id(self) -> None:
        resource = {**REFUND, "custom_id": None, "invoice_id": "re_2"}
        assert (
            event_to_neutral(event("PAYMENT.CAPTURE.REFUNDED", resource), livemode=False).merchant_reference
            == "re_2"
        )

    @pytest.mark.parametrize(
        ("status", "kind"),
        [
            ("FAILED", NeutralKind.REFUND_FAILED),
            ("CANCELLED", NeutralKind.REFUND_FAILED),
            ("PENDING", NeutralKind.IGNORED),
        ],
    )
    def test_refund_states(self, status: str, kind: NeutralKind) -> None:
        assert (
            event_to_neutral(
                event("PAYMENT.CAPTURE.REFUNDED", {**REFUND, "status": status}), livemode=False
            ).kind
            is kind
        )

    def test_order_approved_is_authorized_and_names_the_attempt(self) -> None:
        order = {"id": "ORDER1", "status": "APPROVED", "purchase_units": [{"custom_id": "pay_attempt1"}]}
        neutral = event_to_neutral(event("CHECKOUT.ORDER.APPROVED", order), livemode=False)
        assert neutral.kind is NeutralKind.PAYMENT_AUTHORIZED
        assert (neutral.payment_ref, neutral.merchant_reference) == ("ORDER1", "pay_attempt1")
        assert neutral.amount is None

    def test_approval_reversed_fails_the_attempt(self) -> None:
        neutral = event_to_neutral(
            event("CHECKOUT.PAYMENT-APPROVAL.REVERSED", {"order_id": "ORDER1"}), livemode=False
        )
        assert (neutral.kind, neutral.payment_ref) == (NeutralKind.PAYMENT_FAILED, "ORDER1")

    @pytest.mark.parametrize(
        "payload",
        [
            {"id": "WH-1", "event_type": "BILLING.SUBSCRIPTION.CREATED", "resource": {}},
            {"id": "WH-1", "event_type": "CHECKOUT.ORDER.COMPLETED", "resource": {"id": "ORDER1"}},
            {"id": "WH-1"},
            {},
            {"id": 7, "event_type": ["x"], "resource": "nope"},
            {"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": None},
            {
                "id": "WH-1",
                "event_type": "PAYMENT.CAPTURE.COMPLETED",
                "resource": {"amount": "25.00", "supplementary_data": []},
            },
            {
                "id": "WH-1",
                "event_type": "PAYMENT.CAPTURE.REFUNDED",
                "resource": {"status": 3, "amount": {"value": 25}},
            },
            {"id": "WH-1", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": {"purchase_units": "x"}},
        ],
    )
    def test_odd_shapes_never_raise_and_never_succeed_with_money(self, payload: dict[str, Any]) -> None:
        neutral = event_to_neutral(payload, livemode=False)
        assert neutral.amount is None
        assert neutral.payment_ref is None or neutral.kind is not NeutralKind.PAYMENT_SUCCEEDED

    def test_unknown_types_are_ignored(self) -> None:
        assert (
            event_to_neutral({"id": "WH-1", "event_type": "X.Y"}, livemode=False).kind is NeutralKind.IGNORED
        )


class TestAmounts:
    @pytest.mark.parametrize(
        ("amount", "money"),
        [
            ({"currency_code": "EUR", "value": "25.00"}, Money(2500, "EUR")),
            ({"currency_code": "EUR", "value": "25"}, Money(2500, "EUR")),
            ({"currency_code": "EUR", "value": "25.5"}, Money(2550, "EUR")),
            ({"currency_code": "JPY", "value": "2500"}, Money(2500, "JPY")),
            ({"currency_code": "HUF", "value": "1500"}, Money(150000, "HUF")),
            ({"currency_code": "KWD", "value": "1.234"}, Money(1234, "KWD")),
            ({"currency_code": "USD", "value": "0.10"}, Money(10, "USD")),
            ({"currency_code": "USD", "value": "19.990"}, Money(1999, "USD")),
            ({"currency_code": "usd", "value": "1.00"}, Money(100, "USD")),
        ],
    )
    def test_exact_amounts(self, amount: dict[str, str], money: Money) -> None:
        assert from_paypal_amount(amount) == money

    @pytest.mark.parametrize(
        "amount",
        [
            {"currency_code": "EUR", "value": "25.001"},  # a fraction of a cent
            {"currency_code": "EUR", "value": 25.0},
            {"currency_code": "EUR", "value": "-1.00"},
            {"currency_code": "EUR", "value": "1e3"},
            {"currency_code": "EUR", "value": " 1.00"},
            {"currency_code": "EUR", "value": "01.00"},
            {"currency_code": "EUR", "value": "1,00"},
            {"currency_code": "EUR", "value": "NaN"},
            {"currency_code": "EUR", "value": "٣.٠٠"},
            {"currency_code": "XXX", "value": "1.00"},
            {"currency_code": "EUR", "value": "99999999999999999.00"},
            {"value": "1.00"},
            "25.00",
            None,
        ],
    )
    def test_anything_inexact_is_no_amount(self, amount: Any) -> None:
        assert from_paypal_amount(amount) is None


class TestOrderStatus:
    def order(self, status: str, capture: dict[str, Any] | None = None) -> dict[str, Any]:
        units: list[dict[str, Any]] = [{"payments": {"captures": [capture]}}] if capture else [{}]
        return {"id": "ORDER1", "status": status, "purchase_units": units}

    @pytest.mark.parametrize(
        ("status", "capture_status", "state"),
        [
            ("COMPLETED", "COMPLETED", ProviderPaymentState.SUCCEEDED),
            ("COMPLETED", "REFUNDED", ProviderPaymentState.SUCCEEDED),
            ("COMPLETED", "PARTIALLY_REFUNDED", ProviderPaymentState.SUCCEEDED),
            ("COMPLETED", "PENDING", ProviderPaymentState.PENDING),
            ("COMPLETED", "DECLINED", ProviderPaymentState.FAILED),
            ("COMPLETED", "FAILED", ProviderPaymentState.FAILED),
            ("COMPLETED", "SOMETHING_NEW", ProviderPaymentState.PENDING),
            ("APPROVED", None, ProviderPaymentState.PENDING),
            ("CREATED", None, ProviderPaymentState.PENDING),
            ("SAVED", None, ProviderPaymentState.PENDING),
            ("PAYER_ACTION_REQUIRED", None, ProviderPaymentState.PENDING),
            ("VOIDED", None, ProviderPaymentState.CANCELED),
        ],
    )
    def test_states(self, status: str, capture_status: str | None, state: ProviderPaymentState) -> None:
        capture = {**CAPTURE, "status": capture_status} if capture_status else None
        result = order_to_status(self.order(status, capture))
        assert result.state is state
        if state is ProviderPaymentState.SUCCEEDED:
            assert (result.amount, result.charge_ref) == (Money(2500, "EUR"), "CAP123")

    def test_completed_order_without_a_capture_is_not_a_success(self) -> None:
        assert order_to_status(self.order("COMPLETED")).state is ProviderPaymentState.PENDING
