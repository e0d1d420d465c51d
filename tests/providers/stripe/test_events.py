"""Stripe events in paycore's words: pure, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.money import Money
from paycore.payments.providers.base import NeutralKind
from paycore.payments.providers.stripe_events import to_neutral


def event(event_type: str, subject: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": subject}, **extra}


def intent(**fields: Any) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 2500,
        "amount_received": 2500,
        "currency": "eur",
        "metadata": {"paycore_attempt": "pay_1"},
        **fields,
    }


def refund(**fields: Any) -> dict[str, Any]:
    return {
        "id": "re_s1",
        "object": "refund",
        "amount": 1000,
        "currency": "eur",
        "payment_intent": "pi_1",
        "status": "succeeded",
        "metadata": {"paycore_refund": "re_1"},
        **fields,
    }


class TestPaymentEvents:
    def test_succeeded_carries_the_amount_received(self) -> None:
        neutral = to_neutral(event("payment_intent.succeeded", intent(amount_received=2400)), livemode=False)
        assert neutral.kind is NeutralKind.PAYMENT_SUCCEEDED
        assert (neutral.provider_event_id, neutral.payment_ref, neutral.merchant_reference) == (
            "evt_1",
            "pi_1",
            "pay_1",
        )
        assert neutral.amount == Money(2400, "EUR")

    @pytest.mark.parametrize(
        ("event_type", "kind"),
        [
            ("payment_intent.processing", NeutralKind.PAYMENT_PENDING),
            ("payment_intent.payment_failed", NeutralKind.PAYMENT_FAILED),
            ("payment_intent.canceled", NeutralKind.PAYMENT_FAILED),
            ("payment_intent.created", NeutralKind.IGNORED),
            ("customer.created", NeutralKind.IGNORED),
        ],
    )
    def test_kinds(self, event_type: str, kind: NeutralKind) -> None:
        neutral = to_neutral(event(event_type, intent()), livemode=False)
        assert neutral.kind is kind
        assert neutral.amount is None  # only a success says how much was received

    def test_a_failure_says_why(self) -> None:
        failed = intent(last_payment_error={"code": "card_declined", "message": "Your card was declined."})
        assert to_neutral(event("payment_intent.payment_failed", failed), livemode=False).failure_reason == (
            "Your card was declined."
        )
        canceled = intent(status="canceled", cancellation_reason="abandoned")
        assert to_neutral(event("payment_intent.canceled", canceled), livemode=False).failure_reason == (
            "canceled: abandoned"
        )

    def test_the_events_own_livemode_wins_over_the_verifying_mode(self) -> None:
        assert (
            to_neutral(event("payment_intent.succeeded", intent(), livemode=True), livemode=False).livemode
            is True
        )
        assert (
            to_neutral(event("payment_intent.succeeded", intent(), livemode=False), livemode=True).livemode
            is False
        )
        assert to_neutral(event("payment_intent.succeeded", intent()), livemode=True).livemode is True


class TestRefundEvents:
    @pytest.mark.parametrize(
        ("event_type", "status", "kind"),
        [
            ("refund.created", "succeeded", NeutralKind.REFUND_SUCCEEDED),
            ("refund.updated", "succeeded", NeutralKind.REFUND_SUCCEEDED),
            ("refund.updated", "failed", NeutralKind.REFUND_FAILED),
            ("refund.updated", "canceled", NeutralKind.REFUND_FAILED),
            ("refund.failed", "failed", NeutralKind.REFUND_FAILED),
            ("charge.refund.updated", "succeeded", NeutralKind.REFUND_SUCCEEDED),
            ("refund.created", "pending", NeutralKind.IGNORED),
        ],
    )
    def test_kinds(self, event_type: str, status: str, kind: NeutralKind) -> None:
        neutral = to_neutral(
            event(event_type, refund(status=status, failure_reason="lost_or_stolen_card")), livemode=False
        )
        assert neutral.kind is kind
        if kind is not NeutralKind.IGNORED:
            assert (neutral.refund_ref, neutral.payment_ref, neutral.merchant_reference) == (
                "re_s1",
                "pi_1",
                "re_1",
            )
            assert neutral.amount == Money(1000, "EUR")
        if kind is NeutralKind.REFUND_FAILED:
            assert neutral.failure_reason == "lost_or_stolen_card"

    def test_charge_refunded_with_its_only_refund_is_about_that_refund(self) -> None:
        charge = {
            "id": "ch_1",
            "object": "charge",
            "payment_intent": "pi_1",
            "refunds": {"data": [refund()], "has_more": False},
        }
        neutral = to_neutral(event("charge.refunded", charge), livemode=False)
        assert neutral.kind is NeutralKind.REFUND_SUCCEEDED
        assert (neutral.refund_ref, neutral.merchant_reference) == ("re_s1", "re_1")

    @pytest.mark.parametrize(
        "refunds",
        [
            None,  # API versions since 2022-11-15 leave the list out
            {"data": [refund(), refund(id="re_s2")], "has_more": False},
            {"data": [refund()], "has_more": True},
            {"data": []},
        ],
    )
    def test_charge_refunded_that_does_not_say_which_refund_is_ignored(
        self, refunds: dict[str, Any] | None
    ) -> None:
        charge: dict[str, Any] = {
            "id": "ch_1",
            "object": "charge",
            "payment_intent": "pi_1",
            "amount_refunded": 2000,
        }
        if refunds is not None:
            charge["refunds"] = refunds
        assert to_neutral(event("charge.refunded", charge), livemode=False).kind is NeutralKind.IGNORED


class TestOddShapes:
    def test_a_dispute_names_its_payment(self) -> None:
        dispute = {
            "id": "dp_1",
            "object": "dispute",
            "payment_intent": "pi_1",
            "amount": 2500,
            "currency": "eur",
        }
        neutral = to_neutral(event("charge.dispute.created", dispute), livemode=False)
        assert (neutral.kind, neutral.payment_ref) == (NeutralKind.DISPUTE_OPENED, "pi_1")

    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"id": 5, "type": None},
            {"id": "evt_1", "type": "payment_intent.succeeded", "data": []},
            {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"object": "charge"}}},
            event("payment_intent.succeeded", intent(amount_received="2500", currency=7, metadata=None)),
            event("payment_intent.succeeded", intent(amount_received=True, currency="zzz")),
            event("refund.updated", refund(status=None, metadata="x")),
            event("charge.refunded", {"object": "charge", "refunds": {"data": ["x"], "has_more": False}}),
        ],
    )
    def test_never_raises(self, payload: dict[str, Any]) -> None:
        neutral = to_neutral(payload, livemode=False)
        assert neutral.amount is None or isinstance(neutral.amount.amount, int)
