"""Razorpay webhook payloads → neutral events (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.money import Money
from paycore.payments.providers.base import NeutralKind
from paycore.payments.providers.razorpay_events import EVENT_ID_KEY, to_neutral

PAYMENT = {
    "id": "pay_29QQoUBi66xm2f",
    "entity": "payment",
    "amount": 49900,
    "currency": "INR",
    "status": "captured",
    "order_id": "order_9A33XWu170gUtm",
    "captured": True,
    "notes": [],
}
REFUND = {
    "id": "rfnd_FP8QHiV938haTz",
    "entity": "refund",
    "amount": 10000,
    "currency": "INR",
    "payment_id": "pay_29QQoUBi66xm2f",
    "notes": {"paycore_refund": "re_123"},
    "receipt": "re_123",
    "status": "processed",
}


def event(name: str, **payload: Any) -> dict[str, Any]:
    return {
        "entity": "event",
        "event": name,
        "payload": {key: {"entity": value} for key, value in payload.items()},
        EVENT_ID_KEY: "evt_1",
    }


class TestPayments:
    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("payment.captured", NeutralKind.PAYMENT_SUCCEEDED),
            ("payment.authorized", NeutralKind.PAYMENT_PENDING),
            ("payment.failed", NeutralKind.PAYMENT_FAILED),
        ],
    )
    def test_payment_events_name_the_order(self, name: str, kind: NeutralKind) -> None:
        neutral = to_neutral(event(name, payment=PAYMENT), livemode=True)
        assert neutral.kind is kind
        assert neutral.provider_event_id == "evt_1"
        assert neutral.payment_ref == "order_9A33XWu170gUtm"
        assert neutral.amount == Money(49900, "INR")
        assert neutral.livemode is True

    def test_order_paid_reads_the_attempt_from_the_order_notes(self) -> None:
        order = {"id": "order_9A33XWu170gUtm", "entity": "order", "notes": {"paycore_attempt": "pay_abc"}}
        neutral = to_neutral(event("order.paid", payment=PAYMENT, order=order), livemode=False)
        assert neutral.kind is NeutralKind.PAYMENT_SUCCEEDED
        assert (neutral.payment_ref, neutral.merchant_reference) == ("order_9A33XWu170gUtm", "pay_abc")
        assert neutral.amount == Money(49900, "INR")

    def test_failure_reason_is_kept(self) -> None:
        failed = {
            **PAYMENT,
            "status": "failed",
            "error_code": "BAD_REQUEST_ERROR",
            "error_description": "Declined",
        }
        neutral = to_neutral(event("payment.failed", payment=failed), livemode=False)
        assert neutral.failure_reason == "BAD_REQUEST_ERROR: Declined"

    def test_a_payment_without_an_order_is_not_ours(self) -> None:
        neutral = to_neutral(event("payment.captured", payment={**PAYMENT, "order_id": None}), livemode=False)
        assert neutral.kind is NeutralKind.IGNORED


class TestRefunds:
    def test_processed_and_failed(self) -> None:
        processed = to_neutral(event("refund.processed", refund=REFUND, payment=PAYMENT), livemode=False)
        assert processed.kind is NeutralKind.REFUND_SUCCEEDED
        assert (processed.refund_ref, processed.merchant_reference) == ("rfnd_FP8QHiV938haTz", "re_123")
        assert processed.payment_ref == "order_9A33XWu170gUtm"
        assert processed.amount == Money(10000, "INR")
        failed = to_neutral(event("refund.failed", refund={**REFUND, "status": "failed"}), livemode=False)
        assert failed.kind is NeutralKind.REFUND_FAILED
        assert failed.payment_ref is None

    def test_created_is_ignored(self) -> None:
        assert to_neutral(event("refund.created", refund=REFUND), livemode=False).kind is NeutralKind.IGNORED

    def test_auto_refund_of_an_uncaptured_payment_is_ignored(self) -> None:
        uncaptured = {**PAYMENT, "captured": False, "status": "refunded"}
        neutral = to_neutral(event("refund.processed", refund=REFUND, payment=uncaptured), livemode=False)
        assert neutral.kind is NeutralKind.IGNORED


class TestOddShapes:
    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"event": 7},
            {"event": "payment.captured", "payload": []},
            {"event": "payment.captured", "payload": {"payment": {"entity": "nope"}}},
            {"event": "payment.captured", "payload": {"payment": {"entity": {**PAYMENT, "amount": 499.0}}}},
            {"event": "payment.captured", "payload": {"payment": {"entity": {**PAYMENT, "amount": True}}}},
            {"event": "refund.processed", "payload": {"refund": {"entity": {"notes": "x", "amount": "100"}}}},
            {"event": "subscription.charged", "payload": {}},
        ],
    )
    def test_never_raise(self, payload: dict[str, Any]) -> None:
        neutral = to_neutral(payload, livemode=False)
        assert neutral.provider_event_id.startswith("sha256:")  # no event id stored: a stable hash

    def test_a_float_amount_is_not_money(self) -> None:
        neutral = to_neutral(event("payment.captured", payment={**PAYMENT, "amount": 499.0}), livemode=False)
        assert neutral.kind is NeutralKind.PAYMENT_SUCCEEDED
        assert neutral.amount is None  # apply.py then sends the order to review, never paid

    def test_unknown_events_are_ignored(self) -> None:
        assert to_neutral(event("payment.dispute.created"), livemode=False).kind is NeutralKind.IGNORED

    def test_hash_fallback_is_stable(self) -> None:
        payload = {"event": "payment.captured", "payload": {}}
        assert (
            to_neutral(payload, livemode=False).provider_event_id
            == to_neutral(dict(payload), livemode=False).provider_event_id
        )
