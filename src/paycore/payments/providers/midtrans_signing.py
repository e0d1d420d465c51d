"""Midtrans' notification signature, pure: no I/O, no settings.

`signature_key = SHA512(order_id + status_code + gross_amount + server_key)`, lowercase hex. It is
a plain hash, not an HMAC, and its inputs are the notification's own strings *verbatim*: Midtrans
signs `"99000.00"`, so a body carrying `"99000"` or `"99000.0"` with the same signature is refused.
Nothing here ever reformats an amount.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# SHA-512 in hex: exactly 128 hex digits. Anything else is refused before comparing, which also
# keeps non-ASCII text away from `hmac.compare_digest` (it raises on that).
_SIGNATURE = re.compile(r"[0-9a-fA-F]{128}")


def notification_signature(*, order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    message = f"{order_id}{status_code}{gross_amount}{server_key}"
    return hashlib.sha512(message.encode()).hexdigest()


def signature_matches(
    *, order_id: str, status_code: str, gross_amount: str, server_key: str, signature_key: str
) -> bool:
    """Constant-time check of a notification's `signature_key` against one server key."""
    if not _SIGNATURE.fullmatch(signature_key):
        return False
    if not all(value.isascii() for value in (order_id, status_code, gross_amount)):
        return False  # Midtrans sends ASCII; a lone surrogate would not even encode (a 500)
    expected = notification_signature(
        order_id=order_id, status_code=status_code, gross_amount=gross_amount, server_key=server_key
    )
    return hmac.compare_digest(expected, signature_key.lower())
