"""Opaque, type-prefixed object ids (`ten_…`, `key_…`, `ord_…`).

128 bits: a millisecond timestamp in the high 48 bits, randomness below. Written in fixed-width
base62 whose alphabet is in ASCII order, so ids sort by creation time (good B-tree locality on
PostgreSQL) without being guessable or sequential.
"""

from __future__ import annotations

import secrets
import string
import time

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_WIDTH = 22  # 62**22 > 2**128
_RANDOM_BITS = 80


def encode_base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    if value:
        raise ValueError("value does not fit in the requested width")
    return "".join(reversed(chars))


def random_base62(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    value = (millis << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS)
    return f"{prefix}_{encode_base62(value, _WIDTH)}"
