"""Our Stripe signature check against the SDK's own (`stripe.Webhook.construct_event`) as oracle."""

from __future__ import annotations

import json

import pytest
import stripe

from paycore.payments.providers import stripe_signing
from paycore.payments.providers.stripe_signing import SignatureError, signature_header, verify

SECRET = "whsec_test_secret"
NOW = 1_700_000_000
VECTOR_BODY = b'{"id":"evt_test_1","object":"event","type":"payment_intent.succeeded"}'
VECTOR_V1 = "871acfe933554b446cc41d791076dd56a10c0553cc61aafbeb881d0082b45043"


def sdk_accepts(body: bytes, header: str, secret: str, *, now: int) -> bool:
    """The SDK's verdict at time `now` (it reads the wall clock, so we shift the tolerance)."""
    import time

    tolerance = 300 + max(int(time.time()) - now, 0)
    try:
        stripe.Webhook.construct_event(body.decode(), header, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError:
        return False
    return True


def reason(
    secrets: list[str], header: str | None, body: bytes = VECTOR_BODY, *, now: int = NOW
) -> str | None:
    try:
        verify(secrets, header, body, now=now)
    except SignatureError as exc:
        return exc.reason
    return None


class TestKnownAnswer:
    def test_the_vector_from_providers_md(self) -> None:
        assert signature_header(SECRET, NOW, VECTOR_BODY) == f"t={NOW},v1={VECTOR_V1}"
        sdk = stripe.WebhookSignature.generate_signature_header(VECTOR_BODY.decode(), SECRET, timestamp=NOW)
        assert sdk == f"t={NOW},v1={VECTOR_V1}"
        assert reason([SECRET], sdk) is None

    def test_the_secret_is_used_as_text_with_its_prefix_not_base64_decoded(self) -> None:
        import base64
        import hashlib
        import hmac

        decoded = base64.b64decode("dGVzdF9zZWNyZXQ=")  # "test_secret": what Standard Webhooks would key with
        wrong = hmac.new(decoded, f"{NOW}.".encode() + VECTOR_BODY, hashlib.sha256).hexdigest()
        assert reason([SECRET], f"t={NOW},v1={wrong}") == "bad_signature"

    def test_a_reserialised_body_is_refused(self) -> None:
        header = signature_header(SECRET, NOW, VECTOR_BODY)
        reserialised = json.dumps(json.loads(VECTOR_BODY)).encode()  # spaces after separators
        assert reserialised != VECTOR_BODY
        assert reason([SECRET], header, reserialised) == "bad_signature"


class TestAgreesWithTheSdk:
    @pytest.mark.parametrize(
        ("case", "expected"),
        [
            ("right", None),
            ("wrong_secret", "bad_signature"),
            ("tampered_body", "bad_signature"),
            ("v0_only", "malformed_signature"),
            ("wrong_then_right_v1", None),
            ("old_301s", "stale_timestamp"),
            ("old_299s", None),
        ],
    )
    def test_case(self, case: str, expected: str | None) -> None:
        now = NOW
        body = VECTOR_BODY
        secret = SECRET
        timestamp = now - 301 if case == "old_301s" else now - 299 if case == "old_299s" else now
        right = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, timestamp=timestamp)
        header = right
        if case == "wrong_secret":
            secret = "whsec_another_secret"
        if case == "tampered_body":
            body = body.replace(b"evt_test_1", b"evt_test_2")
        if case == "v0_only":
            header = right.replace("v1=", "v0=")
        if case == "wrong_then_right_v1":
            header = right.replace("v1=", "v1=" + "0" * 64 + ",v1=")
        assert reason([secret], header, body, now=now) == expected
        assert sdk_accepts(body, header, secret, now=now) is (expected is None)

    def test_our_headers_pass_the_sdk(self) -> None:
        import time

        now = int(time.time())
        header = signature_header(SECRET, now, VECTOR_BODY)
        event = stripe.Webhook.construct_event(VECTOR_BODY.decode(), header, SECRET)
        assert event.id == "evt_test_1"


class TestStricterThanTheSdk:
    def test_a_timestamp_301s_in_the_future_is_refused_which_the_sdk_accepts(self) -> None:
        header = stripe.WebhookSignature.generate_signature_header(
            VECTOR_BODY.decode(), SECRET, timestamp=NOW + 301
        )
        assert reason([SECRET], header) == "future_timestamp"
        assert reason([SECRET], header, now=NOW + 1) is None  # 300 s ahead: inside the tolerance
        assert sdk_accepts(VECTOR_BODY, header, SECRET, now=NOW)

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "garbage",
            f"t=abc,v1={VECTOR_V1}",
            f"v1={VECTOR_V1}",
            f"t={NOW}",
            f"t=１７,v1={VECTOR_V1}",
            f"t={NOW},v1=é",
        ],
    )
    def test_malformed_headers_are_refused_not_crashed_on(self, header: str | None) -> None:
        assert reason([SECRET], header) in {"missing_signature", "malformed_signature", "bad_signature"}


class TestRotation:
    def test_both_the_old_and_the_new_secret_verify_during_rotation(self) -> None:
        old, new = "whsec_old_secret", "whsec_new_secret"
        for secret in (old, new):
            header = signature_header(secret, NOW, VECTOR_BODY)
            assert reason([new, old], header) is None
        assert reason([new], signature_header(old, NOW, VECTOR_BODY)) == "bad_signature"

    def test_stripe_rolling_sends_two_v1_and_either_matches(self) -> None:
        old = signature_header("whsec_old_secret", NOW, VECTOR_BODY)
        new = signature_header("whsec_new_secret", NOW, VECTOR_BODY)
        both = old + "," + new.split(",")[1]
        assert reason(["whsec_new_secret"], both) is None
        assert reason(["whsec_old_secret"], both) is None
        assert reason(["whsec_third_secret"], both) == "bad_signature"

    def test_no_secret_verifies_nothing(self) -> None:
        assert reason([], signature_header(SECRET, NOW, VECTOR_BODY)) == "bad_signature"


class HmacCounter:
    """Counts the HMACs over the body that `verify` makes, through the module's `signature`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = stripe_signing.signature

        def counted(secret: str, timestamp: int, body: bytes) -> str:
            self.calls += 1
            return real(secret, timestamp, body)

        monkeypatch.setattr(stripe_signing, "signature", counted)


class TestBoundedWork:
    """Issue 11, finding 6: an anonymous header must not buy an HMAC per `v1` entry."""

    def test_one_hmac_per_secret_however_many_v1(self, monkeypatch: pytest.MonkeyPatch) -> None:
        right = signature_header(SECRET, NOW, VECTOR_BODY)
        header = f"t={NOW}," + ",".join(["v1=" + "0" * 64] * 7) + "," + right.split(",")[1]
        counter = HmacCounter(monkeypatch)
        assert reason(["whsec_other_secret", SECRET], header) is None
        assert counter.calls == 2

    @pytest.mark.parametrize(
        ("shape", "header"),
        [
            ("2000 empty v1 in 8 KB", f"t={NOW}," + ",".join(["v1="] * 2000)),
            ("nine v1", f"t={NOW}," + ",".join([f"v1={VECTOR_V1}"] * 9)),
            ("two timestamps", f"t={NOW},t={NOW + 1},v1={VECTOR_V1}"),
            ("too long", f"t={NOW},v1={VECTOR_V1}," + "x" * 1024),
        ],
    )
    def test_hostile_header_shapes_are_refused_before_any_hmac(
        self, monkeypatch: pytest.MonkeyPatch, shape: str, header: str
    ) -> None:
        counter = HmacCounter(monkeypatch)
        assert reason([SECRET, "whsec_other_secret"], header) == "malformed_signature", shape
        assert counter.calls == 0

    def test_the_sdk_accepts_what_the_caps_allow(self) -> None:
        # Stripe sends one v1 per active secret; a rolled secret and a v0 fit easily.
        old = signature_header("whsec_old_secret", NOW, VECTOR_BODY)
        header = old + f",v1={VECTOR_V1},v0={'0' * 64}"
        assert reason([SECRET], header) is None
        assert sdk_accepts(VECTOR_BODY, header, SECRET, now=NOW)
