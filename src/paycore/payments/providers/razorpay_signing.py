"""Razorpay's two HMACs, pure: no I/O, no SDK.

- Checkout's payment signature: HMAC-SHA256(key = key_secret, msg = "{order_id}|{payment_id}"), hex.
- A webhook's `X-Razorpay-Signature`: HMAC-SHA256(key = webhook secret, msg = the raw body), hex.

Both keys are the secrets' UTF-8 bytes, as the official SDK (`razorpay.utility.Utility`) uses them.
Comparisons are constant-time and on bytes: `hmac.compare_digest` refuses non-ASCII `str`, and a
signature header is attacker-controlled input that must not turn into an exception.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def _hex_hmac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _same(expected_hex: str, given: str) -> bool:
    # Lower-case hex is what Razorpay sends; anything else (non-ASCII included) simply differs.
    return hmac.compare_digest(expected_hex.encode(), given.encode("utf-8", "surrogatepass"))


def payment_signature(key_secret: str, order_id: str, payment_id: str) -> str:
    return _hex_hmac(key_secret, f"{order_id}|{payment_id}".encode())


def payment_signature_matches(key_secret: str, order_id: str, payment_id: str, signature: str) -> bool:
    return _same(payment_signature(key_secret, order_id, payment_id), signature)


def webhook_signature(secret: str, body: bytes) -> str:
    """Over the exact bytes received: never a re-serialised body (Razorpay: "do not parse or cast")."""
    return _hex_hmac(secret, body)


def webhook_signature_matches(secrets: Iterable[str], body: bytes, signature: str) -> bool:
    """True when any of the secrets (two during a rotation) signed `body`. Every secret is tried,
    so the time taken does not tell which one matched."""
    matched = False
    for secret in secrets:
        matched |= _same(webhook_signature(secret, body), signature)
    return matched
