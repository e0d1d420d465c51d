"""PayPal's webhook signature, checked offline: pure, no I/O (the adapter fetches the certificate).

PayPal signs `transmission_id|transmission_time|webhook_id|crc32(body)` with the key of a
certificate it names in `PAYPAL-CERT-URL`. That URL arrives with the request, so before anything
fetches it, `cert_url_allowed` holds it to a rule PayPal does not publish but every URL it sends
satisfies: https, a host under paypal.com compared label by label, the notifications-certs path,
no userinfo, no port but the default. The certificate must then chain to our trust roots, be valid
now, and name a `*.paypal.com` subject.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

CERT_PATH_PREFIX = "/v1/notifications/certs/"
# SHA1withRSA is what the old SDK also took; PayPal signs with SHA-256 and we accept nothing weaker.
SUPPORTED_ALGORITHM = "SHA256withRSA"
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_CERT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_MAX_URL = 2048
# PayPal documents no tolerance and its retries (reportedly over about three days) may carry the
# first transmission's time: refuse only what no retry explains. Replays inside the window are
# harmless — the inbox applies each event id once.
MAX_TRANSMISSION_AGE = timedelta(days=4)
MAX_TRANSMISSION_SKEW = timedelta(minutes=15)


class SignatureRefused(Exception):
    """Not PayPal's signature. `reason` is a short code for metrics and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def cert_url_allowed(url: str) -> bool:
    """May we fetch this certificate URL? Only PayPal's own notification-certificate endpoint."""
    if len(url) > _MAX_URL or not url.isascii() or any(ch <= " " or ch == "\x7f" for ch in url):
        return False
    if "\\" in url or "%" in url:
        return False  # no encoded or backslashed tricks: PayPal's URLs need neither
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or "@" in parts.netloc or parts.query or parts.fragment:
        return False
    if port not in (None, 443):
        return False
    labels = (parts.hostname or "").split(".")
    if len(labels) < 2 or labels[-2:] != ["paypal", "com"]:
        return False
    if not all(_LABEL.match(label) for label in labels):
        return False
    if not parts.path.startswith(CERT_PATH_PREFIX):
        return False
    name = parts.path[len(CERT_PATH_PREFIX) :]
    return bool(_CERT_NAME.match(name)) and ".." not in name


def body_crc32(body: bytes) -> int:
    """The unsigned CRC32 of the raw body, as PayPal puts it in the signed string."""
    return binascii.crc32(body) & 0xFFFFFFFF


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{body_crc32(body)}".encode()


def check_transmission_time(transmission_time: str, now: datetime) -> None:
    try:
        sent = datetime.fromisoformat(transmission_time)
    except ValueError:
        raise SignatureRefused("malformed_timestamp", "the transmission time is not a timestamp") from None
    if sent.tzinfo is None:
        raise SignatureRefused("malformed_timestamp", "the transmission time has no time zone")
    if sent < now - MAX_TRANSMISSION_AGE:
        raise SignatureRefused("timestamp_too_old", "the transmission is too old")
    if sent > now + MAX_TRANSMISSION_SKEW:
        raise SignatureRefused("timestamp_in_future", "the transmission time is in the future")


def load_trust_roots(pem: bytes) -> Store:
    return Store(x509.load_pem_x509_certificates(pem))


def parse_certificates(pem: bytes) -> list[x509.Certificate]:
    """The certificate PayPal serves (leaf first, then any intermediates)."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise SignatureRefused("certificate_invalid", "the signing certificate is not PEM") from None
    if not certificates:
        raise SignatureRefused("certificate_invalid", "no signing certificate was served")
    return certificates


def validated_signing_key(
    certificates: list[x509.Certificate], roots: Store, now: datetime
) -> rsa.RSAPublicKey:
    """The leaf's key, once the chain verifies to `roots` at `now` and the leaf names PayPal."""
    leaf, intermediates = certificates[0], certificates[1:]
    verifier = (
        PolicyBuilder()
        .store(roots)
        .time(now)
        # The CA side keeps the Web PKI rules; the leaf is a signing certificate, not a TLS
        # server's, so no SAN or EKU is required of it.
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise SignatureRefused(
            "certificate_untrusted", f"the signing certificate does not verify: {exc}"
        ) from None
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not str(names[0].value).lower().endswith(".paypal.com"):
        raise SignatureRefused("certificate_not_paypal", "the signing certificate is not PayPal's")
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRefused("certificate_invalid", "the signing certificate's key is not RSA")
    return key


def signature_matches(key: rsa.RSAPublicKey, message: bytes, transmission_sig: str, auth_algo: str) -> bool:
    if auth_algo != SUPPORTED_ALGORITHM:
        return False
    try:
        signature = base64.b64decode(transmission_sig, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
