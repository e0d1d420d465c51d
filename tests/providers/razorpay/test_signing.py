"""Our Razorpay HMACs against the official SDK (razorpay 2.0.1) and PROVIDERS.md's known answers."""

from __future__ import annotations

import pytest
import razorpay
from razorpay.errors import SignatureVerificationError

from paycore.payments.providers.razorpay_signing import (
    payment_signature,
    payment_signature_matches,
    webhook_signature,
    webhook_signature_matches,
)

PAYMENT_VECTOR = "b390964f2e01505ec1f19f4eb2b1b221d94eb45c7b4605a0d876ac9fc1b79c4f"
WEBHOOK_BODY = b'{"entity":"event","event":"payment.captured"}'
WEBHOOK_VECTOR = "56fbd6b250266efc68deda79e699f329c70d0107135515c05ba7e378693f49e0"


def sdk(key_secret: str = "key_secret_123") -> razorpay.Client:
    return razorpay.Client(auth=("rzp_test_oracle", key_secret))


class TestKnownAnswers:
    def test_payment_signature_vector(self) -> None:
        assert payment_signature("key_secret_123", "order_ABC", "pay_XYZ") == PAYMENT_VECTOR
        assert payment_signature_matches("key_secret_123", "order_ABC", "pay_XYZ", PAYMENT_VECTOR)
        assert sdk().utility.verify_payment_signature(
            {
                "razorpay_order_id": "order_ABC",
                "razorpay_payment_id": "pay_XYZ",
                "razorpay_signature": PAYMENT_VECTOR,
            }
        )

    def test_webhook_vector(self) -> None:
        assert webhook_signature("wh_secret", WEBHOOK_BODY) == WEBHOOK_VECTOR
        assert webhook_signature_matches(["wh_secret"], WEBHOOK_BODY, WEBHOOK_VECTOR)
        assert sdk().utility.verify_webhook_signature(WEBHOOK_BODY.decode(), WEBHOOK_VECTOR, "wh_secret")


class TestAgreesWithTheSdk:
    @pytest.mark.parametrize(
        ("order_id", "payment_id", "signature_from"),
        [
            ("order_ABC", "pay_XYZ", ("order_ABC", "pay_XYZ")),
            ("order_ABC", "pay_XYZ", ("order_ABC", "pay_OTHER")),  # signed for another payment
            ("order_ABC", "pay_XYZ", ("order_DEF", "pay_XYZ")),  # signed for another order
        ],
    )
    def test_payment_signature_verdicts_match(
        self, order_id: str, payment_id: str, signature_from: tuple[str, str]
    ) -> None:
        signature = payment_signature("key_secret_123", *signature_from)
        ours = payment_signature_matches("key_secret_123", order_id, payment_id, signature)
        try:
            theirs = sdk().utility.verify_payment_signature(
                {
                    "razorpay_order_id": order_id,
                    "razorpay_payment_id": payment_id,
                    "razorpay_signature": signature,
                }
            )
        except SignatureVerificationError:
            theirs = False
        assert ours is theirs
        assert ours is (signature_from == (order_id, payment_id))

    def test_signed_with_another_key_secret_is_refused_by_both(self) -> None:
        signature = payment_signature("another_secret", "order_ABC", "pay_XYZ")
        assert not payment_signature_matches("key_secret_123", "order_ABC", "pay_XYZ", signature)
        with pytest.raises(SignatureVerificationError):
            sdk().utility.verify_payment_signature(
                {
                    "razorpay_order_id": "order_ABC",
                    "razorpay_payment_id": "pay_XYZ",
                    "razorpay_signature": signature,
                }
            )

    def test_wrong_webhook_signature_is_refused_by_both(self) -> None:
        wrong = webhook_signature("not_the_secret", WEBHOOK_BODY)
        assert not webhook_signature_matches(["wh_secret"], WEBHOOK_BODY, wrong)
        with pytest.raises(SignatureVerificationError):
            sdk().utility.verify_webhook_signature(WEBHOOK_BODY.decode(), wrong, "wh_secret")

    def test_our_signature_of_non_ascii_bytes_passes_the_sdk(self) -> None:
        body = '{"entity":"event","event":"payment.captured","payload":{"note":"चाय ☕"}}'.encode()
        signature = webhook_signature("wh_secret", body)
        # The SDK wants str and raises TypeError on bytes; we take the raw bytes as received.
        with pytest.raises(TypeError):
            sdk().utility.verify_webhook_signature(body, signature, "wh_secret")
        assert sdk().utility.verify_webhook_signature(body.decode(), signature, "wh_secret")
        assert webhook_signature_matches(["wh_secret"], body, signature)

    def test_reserialised_body_does_not_verify(self) -> None:
        spaced = b'{"entity": "event", "event": "payment.captured"}'
        assert not webhook_signature_matches(["wh_secret"], spaced, WEBHOOK_VECTOR)


class TestOddSignatures:
    @pytest.mark.parametrize("given", ["", WEBHOOK_VECTOR.upper(), WEBHOOK_VECTOR[:-1], "é" * 64, "\ud800"])
    def test_refused_without_raising(self, given: str) -> None:
        assert not webhook_signature_matches(["wh_secret"], WEBHOOK_BODY, given)
        assert not payment_signature_matches("key_secret_123", "order_ABC", "pay_XYZ", given)

    def test_any_of_two_rotating_secrets_verifies(self) -> None:
        assert webhook_signature_matches(["new_secret", "wh_secret"], WEBHOOK_BODY, WEBHOOK_VECTOR)
        assert not webhook_signature_matches([], WEBHOOK_BODY, WEBHOOK_VECTOR)
