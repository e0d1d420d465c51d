"""Stripe's webhook signature (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`), pure.

Same maths as the SDK's `stripe.WebhookSignature` (which the tests use as the oracle): HMAC-SHA256
over `f"{t}.{body}"`, keyed with the secret's UTF-8 bytes *including* its `whsec_` prefix; any
`v1` may match (Stripe sends one per active secret while a secret is rolled). Two differences,
both stricter: a timestamp more than `tolerance` seconds in the *future* is refused too (the SDK
only refuses old ones, so a captured header with a far-future `t` would stay replayable), and the
clock is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "Stripe-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for element in header.split(","):
        key, separator, value = element.strip().partition("=")
        if not separator:
            continue
        if key == "t":
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise SignatureError("malformed_signature", "the signature timestamp is not a number")
            timestamp = int(value)
        elif key == SCHEME:
            # Bytes: `compare_digest` raises on a str that is not ASCII.
            signatures.append(value.encode("utf-8", errors="replace"))
    if timestamp is None:
        raise SignatureError("malformed_signature", "the signature header has no timestamp")
    if not signatures:
        raise SignatureError("malformed_signature", f"the signature header has no {SCHEME} signature")
    return timestamp, signatures


def verify(
    secrets: Sequence[str],
    header: str | None,
    body: bytes,
    *,
    now: int,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise `SignatureError` unless one of `secrets` signed `body` within `tolerance` of `now`."""
    if not header:
        raise SignatureError("missing_signature", f"no {SIGNATURE_HEADER} header")
    timestamp, given = _parse(header)
    # Signature before time, as the SDK does: an unsigned header says nothing about its age.
    if not any(
        hmac.compare_digest(signature(secret, timestamp, body).encode(), candidate)
        for secret in secrets
        for candidate in given
    ):
        raise SignatureError("bad_signature", "no signature matches a webhook secret of this account")
    if timestamp < now - tolerance:
        raise SignatureError("stale_timestamp", "the signature is too old (replay?)")
    if timestamp > now + tolerance:
        raise SignatureError("future_timestamp", "the signature is dated in the future")
