"""Stripe's webhook signature (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`), pure.

Same maths as the SDK's `stripe.WebhookSignature` (which the tests use as the oracle): HMAC-SHA256
over `f"{t}.{body}"`, keyed with the secret's UTF-8 bytes *including* its `whsec_` prefix; any
`v1` may match (Stripe sends one per active secret while a secret is rolled). Two differences,
both stricter: a timestamp more than `tolerance` seconds in the *future* is refused too (the SDK
only refuses old ones, so a captured header with a far-future `t` would stay replayable), and the
clock is passed in.

The route is anonymous, so the header's shape is bounded before any HMAC is made: at most
`MAX_HEADER_LENGTH` characters, one `t`, at most `MAX_SIGNATURES` `v1` entries (Stripe sends one
per active secret: two while a secret is rolled); and the HMAC over the body is computed once per
secret, then compared with each `v1`. The SDK's loop (one HMAC per secret per `v1`) let a header of
2,000 empty `v1=` cost a second of CPU per request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_HEADER = "Stripe-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 1024
MAX_SIGNATURES = 8


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
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("malformed_signature", "the signature header is too long")
    timestamp: int | None = None
    signatures: list[bytes] = []
    for element in header.split(","):
        key, separator, value = element.strip().partition("=")
        if not separator:
            continue
        if key == "t":
            if timestamp is not None:
                # Which one would be signed? Neither is believed.
                raise SignatureError("malformed_signature", "the signature header has two timestamps")
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise SignatureError("malformed_signature", "the signature timestamp is not a number")
            timestamp = int(value)
        elif key == SCHEME:
            if len(signatures) == MAX_SIGNATURES:
                raise SignatureError("malformed_signature", f"the signature header has too many {SCHEME}")
            # Bytes: `compare_digest` raises on a str that is not ASCII.
            signatures.append(value.encode("utf-8", errors="replace"))
    if timestamp is None:
        raise SignatureError("malformed_signature", "the signature header has no timestamp")
    if not signatures:
        raise SignatureError("malformed_signature", f"the signature header has no {SCHEME} signature")
    return timestamp, signatures


def _any_matches(expected: bytes, candidates: Sequence[bytes]) -> bool:
    # Every candidate is compared, so the time taken does not say which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


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
    # One HMAC per secret, whatever the number of `v1`: the body is the costly part.
    expected = [signature(secret, timestamp, body).encode() for secret in secrets]
    if not any([_any_matches(digest, given) for digest in expected]):
        raise SignatureError("bad_signature", "no signature matches a webhook secret of this account")
    if timestamp < now - tolerance:
        raise SignatureError("stale_timestamp", "the signature is too old (replay?)")
    if timestamp > now + tolerance:
        raise SignatureError("future_timestamp", "the signature is dated in the future")
