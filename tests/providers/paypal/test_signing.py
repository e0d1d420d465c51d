"""The offline check, pure: PROVIDERS.md's known answer, the certificate rules, the URL rule."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from paycore.payments.providers.paypal_signing import (
    MAX_TRANSMISSION_AGE,
    SignatureRefused,
    body_crc32,
    cert_url_allowed,
    check_transmission_time,
    load_trust_roots,
    parse_certificates,
    signature_matches,
    signed_message,
    validated_signing_key,
)
from tests.providers.paypal.pki import Signer, pki

BODY = b'{"id":"WH-1","event_type":"PAYMENT.CAPTURE.COMPLETED"}'
NOW = datetime.now(UTC)


def key_of(signer: Signer, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return validated_signing_key(parse_certificates(signer.chain_pem), load_trust_roots(pki().root_pem), now)


class TestKnownAnswer:
    def test_crc32_of_the_body(self) -> None:
        assert body_crc32(BODY) == 2325436976

    def test_signed_string(self) -> None:
        assert signed_message("tid-1", "2024-01-01T00:00:00Z", "WEBHOOKID1", BODY) == (
            b"tid-1|2024-01-01T00:00:00Z|WEBHOOKID1|2325436976"
        )


class TestSignature:
    def sign(self, body: bytes, webhook_id: str = "WEBHOOKID1", signer: Signer | None = None) -> str:
        return (signer or pki().good).sign(signed_message("tid-1", "2024-01-01T00:00:00Z", webhook_id, body))

    def test_good_signature_verifies(self) -> None:
        message = signed_message("tid-1", "2024-01-01T00:00:00Z", "WEBHOOKID1", BODY)
        assert signature_matches(key_of(pki().good), message, self.sign(BODY), "SHA256withRSA")

    def test_tampered_body_fails(self) -> None:
        tampered = BODY.replace(b"WH-1", b"WH-2")
        message = signed_message("tid-1", "2024-01-01T00:00:00Z", "WEBHOOKID1", tampered)
        assert not signature_matches(key_of(pki().good), message, self.sign(BODY), "SHA256withRSA")

    def test_event_id_in_place_of_the_webhook_id_fails(self) -> None:
        # Signed for our webhook; a verifier that used the event's own id would build another string.
        message = signed_message("tid-1", "2024-01-01T00:00:00Z", "WH-1", BODY)
        assert not signature_matches(key_of(pki().good), message, self.sign(BODY), "SHA256withRSA")

    def test_sha1_and_unknown_algorithms_are_refused(self) -> None:
        message = signed_message("tid-1", "2024-01-01T00:00:00Z", "WEBHOOKID1", BODY)
        sha1 = base64.b64encode(pki().good.key.sign(message, padding.PKCS1v15(), hashes.SHA1())).decode()
        assert not signature_matches(key_of(pki().good), message, sha1, "SHA1withRSA")
        assert not signature_matches(key_of(pki().good), message, self.sign(BODY), "sha256withrsa")

    def test_signature_that_is_not_base64_fails(self) -> None:
        message = signed_message("tid-1", "2024-01-01T00:00:00Z", "WEBHOOKID1", BODY)
        assert not signature_matches(key_of(pki().good), message, "not*base64!", "SHA256withRSA")


class TestCertificate:
    def test_chain_through_an_intermediate_verifies(self) -> None:
        assert key_of(pki().via_intermediate) is not None

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("expired", "certificate_untrusted"),
            ("not_yet_valid", "certificate_untrusted"),
            ("untrusted", "certificate_untrusted"),
            ("wrong_name", "certificate_not_paypal"),
            ("lookalike_name", "certificate_not_paypal"),
        ],
    )
    def test_refused(self, name: str, reason: str) -> None:
        with pytest.raises(SignatureRefused) as refused:
            key_of(getattr(pki(), name))
        assert refused.value.reason == reason

    def test_a_good_certificate_refused_once_it_has_expired(self) -> None:
        with pytest.raises(SignatureRefused):
            key_of(pki().good, NOW + timedelta(days=400))

    def test_not_pem(self) -> None:
        with pytest.raises(SignatureRefused) as refused:
            parse_certificates(b"<html>hello</html>")
        assert refused.value.reason == "certificate_invalid"


class TestCertUrlRule:
    @pytest.mark.parametrize(
        "url",
        [
            "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270",
            "https://paypal.com/v1/notifications/certs/CERT-1",
            "https://API.PayPal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:443/v1/notifications/certs/CERT-1",
        ],
    )
    def test_paypal_urls_pass(self, url: str) -> None:
        assert cert_url_allowed(url)

    @pytest.mark.parametrize(
        "url",
        [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.com/v1/notifications/certs/CERT-1",
            "https://169.254.169.254/v1/notifications/certs/CERT-1",
            "https://paypal.com@evil.com/v1/notifications/certs/CERT-1",
            "https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://evilpaypal.com/v1/notifications/certs/CERT-1",
            "https://paypal.com.evil.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com./v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/",
            "https://api.paypal.com/v1/notifications/certs/../../oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/%2e%2e/x",
            "https://api.paypal.com/V1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:80/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1?x=1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1#frag",
            "https://api.paypal.com\\@evil.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com /v1/notifications/certs/CERT-1",
            "https://xn--ppal-xqa.com/v1/notifications/certs/CERT-1",
            "https://pаypal.com/v1/notifications/certs/CERT-1",
            "file:///etc/passwd",
            "//api.paypal.com/v1/notifications/certs/CERT-1",
            "",
        ],
    )
    def test_hostile_urls_fail(self, url: str) -> None:
        assert not cert_url_allowed(url)


class TestTransmissionTime:
    def test_recent_and_retried_times_pass(self) -> None:
        check_transmission_time("2024-01-01T00:00:00Z", datetime(2024, 1, 1, 0, 5, tzinfo=UTC))
        check_transmission_time("2024-01-01T00:00:00Z", datetime(2024, 1, 3, 23, 0, tzinfo=UTC))

    @pytest.mark.parametrize(
        ("sent", "reason"),
        [
            ("2024-01-01T00:00:00", "malformed_timestamp"),
            ("yesterday", "malformed_timestamp"),
            ("2024-01-01T01:00:00Z", "timestamp_in_future"),
        ],
    )
    def test_refused(self, sent: str, reason: str) -> None:
        with pytest.raises(SignatureRefused) as refused:
            check_transmission_time(sent, datetime(2024, 1, 1, 0, 0, tzinfo=UTC))
        assert refused.value.reason == reason

    def test_older_than_the_retry_window_is_refused(self) -> None:
        now = datetime(2024, 1, 1, tzinfo=UTC) + MAX_TRANSMISSION_AGE + timedelta(seconds=1)
        with pytest.raises(SignatureRefused) as refused:
            check_transmission_time("2024-01-01T00:00:00Z", now)
        assert refused.value.reason == "timestamp_too_old"
