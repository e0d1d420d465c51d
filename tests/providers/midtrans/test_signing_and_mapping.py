"""The pure parts: the signature (PROVIDERS.md test vector 6), amounts, statuses, event ids."""

from __future__ import annotations

import pytest

from paycore.money import Money
from paycore.payments.providers.base import NeutralKind, ProviderPaymentState
from paycore.payments.providers.midtrans_mapping import (
    AmountNotConvertible,
    event_id,
    gross_amount_of,
    money_of,
    neutral_kind,
    payment_state,
)
from paycore.payments.providers.midtrans_signing import notification_signature, signature_matches

KNOWN = (
    "87116bff8636c0be97d069b3a2ce2864db2f1a7709e6be51bf4e82a755693329"
    "dd4a4122a5fe439c0195186427ae9e0691f40e0fc95628a64d1456a13fc44ef8"
)


class TestSignature:
    def test_known_answer(self) -> None:
        assert (
            notification_signature(
                order_id="ORDER-1",
                status_code="200",
                gross_amount="99000.00",
                server_key="SB-Mid-server-TEST",
            )
            == KNOWN
        )

    def test_matches_the_known_answer(self) -> None:
        assert signature_matches(
            order_id="ORDER-1",
            status_code="200",
            gross_amount="99000.00",
            server_key="SB-Mid-server-TEST",
            signature_key=KNOWN,
        )

    @pytest.mark.parametrize("reformatted", ["99000", "99000.0", "99000.000", " 99000.00"])
    def test_the_amount_is_signed_verbatim(self, reformatted: str) -> None:
        assert not signature_matches(
            order_id="ORDER-1",
            status_code="200",
            gross_amount=reformatted,
            server_key="SB-Mid-server-TEST",
            signature_key=KNOWN,
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [("order_id", "ORDER-2"), ("status_code", "201"), ("server_key", "SB-Mid-server-OTHER")],
    )
    def test_every_input_counts(self, field: str, value: str) -> None:
        inputs = {
            "order_id": "ORDER-1",
            "status_code": "200",
            "gross_amount": "99000.00",
            "server_key": "SB-Mid-server-TEST",
        }
        inputs[field] = value
        assert not signature_matches(**inputs, signature_key=KNOWN)

    @pytest.mark.parametrize("signature", ["", KNOWN[:-1], KNOWN + "0", "é" * 128, KNOWN[:-2] + "zz"])
    def test_malformed_signatures_are_refused_without_error(self, signature: str) -> None:
        assert not signature_matches(
            order_id="ORDER-1",
            status_code="200",
            gross_amount="99000.00",
            server_key="SB-Mid-server-TEST",
            signature_key=signature,
        )


class TestAmounts:
    def test_minor_units_to_whole_rupiah(self) -> None:
        # IDR has exponent 2 in ISO 4217 (and in paycore's money): Rp 99.000 is 9_900_000 minor units.
        assert gross_amount_of(Money(9_900_000, "IDR")) == 99_000

    @pytest.mark.parametrize(
        "amount", [Money(9_900_050, "IDR"), Money(1, "IDR"), Money(0, "IDR"), Money(9_900_000, "USD")]
    )
    def test_amounts_midtrans_cannot_take_are_refused(self, amount: Money) -> None:
        with pytest.raises(AmountNotConvertible):
            gross_amount_of(amount)

    @pytest.mark.parametrize(
        ("text", "minor"),
        [("99000.00", 9_900_000), ("99000", 9_900_000), ("99000.5", 9_900_050), ("0.01", 1)],
    )
    def test_decimal_strings_to_minor_units(self, text: str, minor: int) -> None:
        assert money_of(text) == Money(minor, "IDR")

    def test_currency_is_read_when_given(self) -> None:
        assert money_of("10.50", "USD") == Money(1050, "USD")
        assert money_of("10", "JPY") == Money(10, "JPY")

    @pytest.mark.parametrize(
        "text",
        ["99000.001", "-5.00", "1e5", "99,000.00", "", " 1.00", "NaN", "٩٩", "0x10", 99000, 99000.0, None],
    )
    def test_anything_inexact_or_odd_is_no_amount(self, text: object) -> None:
        assert money_of(text) is None

    def test_fraction_finer_than_the_currency_is_no_amount(self) -> None:
        assert money_of("10.5", "JPY") is None


class TestStatuses:
    @pytest.mark.parametrize(
        ("status", "fraud", "code", "kind"),
        [
            ("settlement", "accept", "200", NeutralKind.PAYMENT_SUCCEEDED),
            ("settlement", None, "200", NeutralKind.PAYMENT_SUCCEEDED),
            ("capture", "accept", "200", NeutralKind.PAYMENT_SUCCEEDED),
            ("capture", "challenge", "201", NeutralKind.PAYMENT_NEEDS_REVIEW),
            ("capture", "challenge", "200", NeutralKind.PAYMENT_NEEDS_REVIEW),
            ("capture", None, "200", NeutralKind.PAYMENT_PENDING),
            ("capture", "accept", "201", NeutralKind.PAYMENT_PENDING),
            ("capture", "deny", "202", NeutralKind.PAYMENT_FAILED),
            ("pending", None, "201", NeutralKind.PAYMENT_PENDING),
            ("authorize", "accept", "200", NeutralKind.PAYMENT_PENDING),
            ("deny", "accept", "202", NeutralKind.PAYMENT_FAILED),
            ("cancel", "accept", "200", NeutralKind.PAYMENT_FAILED),
            ("expire", None, "407", NeutralKind.PAYMENT_FAILED),
            ("failure", None, "202", NeutralKind.PAYMENT_FAILED),
            ("refund", "accept", "200", NeutralKind.REFUND_SUCCEEDED),
            ("partial_refund", "accept", "200", NeutralKind.REFUND_SUCCEEDED),
            ("chargeback", "accept", "200", NeutralKind.DISPUTE_OPENED),
            ("something_new", None, "200", NeutralKind.IGNORED),
        ],
    )
    def test_notification_kinds(self, status: str, fraud: str | None, code: str, kind: NeutralKind) -> None:
        assert neutral_kind(status, fraud, code) is kind

    @pytest.mark.parametrize(
        ("status", "fraud", "code", "state"),
        [
            ("settlement", "accept", "200", ProviderPaymentState.SUCCEEDED),
            ("capture", "accept", "200", ProviderPaymentState.SUCCEEDED),
            ("capture", "challenge", "201", ProviderPaymentState.PENDING),
            ("pending", None, "201", ProviderPaymentState.PENDING),
            ("deny", "accept", "202", ProviderPaymentState.FAILED),
            ("cancel", "accept", "200", ProviderPaymentState.CANCELED),
            ("expire", None, "407", ProviderPaymentState.CANCELED),
            ("partial_refund", "accept", "200", ProviderPaymentState.SUCCEEDED),
        ],
    )
    def test_status_api_states(
        self, status: str, fraud: str | None, code: str, state: ProviderPaymentState
    ) -> None:
        assert payment_state(status, fraud, code) is state


BASE: dict[str, object] = {
    "transaction_id": "tx-1",
    "order_id": "pay_1",
    "status_code": "200",
    "fraud_status": "accept",
}


class TestEventIds:
    def test_a_resent_notification_has_the_same_id(self) -> None:
        first = {**BASE, "transaction_status": "settlement", "signature_key": "a"}
        again = {**BASE, "transaction_status": "settlement", "signature_key": "a", "status_message": "x"}
        assert event_id(first) == event_id(again)

    def test_each_transition_has_its_own_id(self) -> None:
        ids = {
            event_id({**BASE, "transaction_status": "pending", "status_code": "201"}),
            event_id({**BASE, "transaction_status": "capture", "fraud_status": "challenge"}),
            event_id({**BASE, "transaction_status": "capture"}),
            event_id({**BASE, "transaction_status": "settlement"}),
        }
        assert len(ids) == 4

    def test_each_refund_has_its_own_id(self) -> None:
        first = [{"refund_chargeback_id": 1, "refund_amount": "1000.00", "refund_key": "re_1"}]
        second = [*first, {"refund_chargeback_id": 2, "refund_amount": "2000.00", "refund_key": "re_2"}]
        one = event_id({**BASE, "transaction_status": "partial_refund", "refunds": first})
        two = event_id({**BASE, "transaction_status": "partial_refund", "refunds": second})
        assert one != two
        assert one == event_id({**BASE, "transaction_status": "partial_refund", "refunds": list(first)})

    def test_refunds_without_ids_are_told_apart_by_the_running_total(self) -> None:
        one = event_id({**BASE, "transaction_status": "partial_refund", "refund_amount": "10000.00"})
        two = event_id({**BASE, "transaction_status": "partial_refund", "refund_amount": "30000.00"})
        assert one != two
