"""`Paycore-Sandbox-Signature: t=<unix seconds>,v1=<hex>` — HMAC-SHA256 over `t.body`. Pure.

Shaped like Stripe's scheme, but stricter: a timestamp too far in the future is refused as well
as one too old (Stripe's SDK accepts future ones), and several `v1` values are accepted so a
secret can be rotated. The route is anonymous, so the header is bounded before any HMAC is made
(length, one `t`, at most `MAX_SIGNATURES` `v1`), and the body's HMAC is computed once per secret.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Paycore-Sandbox-Signature"
TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 1024
MAX_SIGNATURES = 8


class SignatureError(ValueError):
    """Why a signature was refused: `reason` is a short code for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def compute_signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={compute_signature(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("malformed_header", "the header is too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for element in header.split(","):
        key, separator, value = element.strip().partition("=")
        if not separator:
            continue
        if key == "t":
            if timestamp is not None:
                raise SignatureError("malformed_header", "the header has two timestamps")
            # isascii: str.isdigit() also accepts digits like "²" that int() refuses.
            if not (value.isascii() and value.isdigit()) or len(value) > 12:
                raise SignatureError("malformed_header", "the timestamp is not a number")
            timestamp = int(value)
        elif key == "v1" and value:
            if len(signatures) == MAX_SIGNATURES:
                raise SignatureError("malformed_header", "the header has too many v1 signatures")
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("malformed_header", "the header has no timestamp")
    if not signatures:
        raise SignatureError("malformed_header", "the header has no v1 signature")
    return timestamp, signatures


def verify(
    secrets: list[bytes], header: str | None, body: bytes, *, now: int, tolerance: int = TOLERANCE_SECONDS
) -> None:
    """Raise `SignatureError` unless some v1 in `header` signs `body` under one of `secrets`."""
    if not header:
        raise SignatureError("missing_signature", f"the {SIGNATURE_HEADER} header is missing")
    timestamp, signatures = parse_header(header)
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            "timestamp_out_of_tolerance", f"the timestamp is more than {tolerance}s from now"
        )
    for secret in secrets:
        expected = compute_signature(secret, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return
    raise SignatureError("bad_signature", "no signature matches")
