"""A self-made PKI standing in for PayPal's: a root we trust, a leaf that signs webhooks, and the
leaves a forger might try (expired, not yet valid, not PayPal's name, from a root we do not trust)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

PAYPAL_CN = "messageverificationcerts.sandbox.paypal.com"


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    chain_pem: bytes  # leaf first, then intermediates

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


@dataclass(frozen=True)
class Pki:
    root_pem: bytes
    good: Signer
    via_intermediate: Signer
    expired: Signer
    not_yet_valid: Signer
    wrong_name: Signer
    lookalike_name: Signer
    untrusted: Signer


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(
    name: str, key: rsa.RSAPrivateKey, issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None = None
) -> x509.Certificate:
    now = datetime.now(UTC)
    issuer_name, issuer_key = issuer or (_name(name), key)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _leaf(
    cn: str,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    *,
    not_before: timedelta = timedelta(days=-30),
    not_after: timedelta = timedelta(days=365),
    intermediates: tuple[x509.Certificate, ...] = (),
) -> Signer:
    key = _key()
    now = datetime.now(UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in (leaf, *intermediates))
    return Signer(key=key, chain_pem=pem)


@cache
def pki() -> Pki:
    root_key, rogue_key, middle_key = _key(), _key(), _key()
    root = _ca("Fake PayPal Test Root", root_key)
    rogue = _ca("Forger Root", rogue_key)
    middle = _ca("Fake PayPal Intermediate", middle_key, issuer=(root.subject, root_key))
    return Pki(
        root_pem=root.public_bytes(serialization.Encoding.PEM),
        good=_leaf(PAYPAL_CN, root, root_key),
        via_intermediate=_leaf(PAYPAL_CN, middle, middle_key, intermediates=(middle,)),
        expired=_leaf(
            PAYPAL_CN, root, root_key, not_before=timedelta(days=-400), not_after=timedelta(days=-1)
        ),
        not_yet_valid=_leaf(
            PAYPAL_CN, root, root_key, not_before=timedelta(days=2), not_after=timedelta(days=400)
        ),
        wrong_name=_leaf("messageverificationcerts.example.com", root, root_key),
        lookalike_name=_leaf("messageverificationcerts.notpaypal.com", root, root_key),
        untrusted=_leaf(PAYPAL_CN, rogue, rogue_key),
    )
