"""API key text: generation, parsing and hashing. Pure; no I/O.

A key reads `sk_test_<12 lookup chars><32 secret chars>` (`pk_` for publishable, `live` for live
mode). The first 20 characters are the stored, shown `prefix` that finds the row; the whole text is
stored only as a SHA-256 digest. The secret part carries 190 bits, so a fast hash is enough (a
slow password hash would only slow every request down).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from paycore.auth.models import KeyKind, KeyMode
from paycore.ids import random_base62

_LOOKUP_LENGTH = 12
_SECRET_LENGTH = 32
_KIND_PREFIX = {KeyKind.SECRET: "sk", KeyKind.PUBLISHABLE: "pk"}
_KIND_BY_PREFIX = {prefix: kind for kind, prefix in _KIND_PREFIX.items()}
_KEY_PATTERN = re.compile(
    rf"^(?P<kind>sk|pk)_(?P<mode>test|live)_(?P<body>[0-9A-Za-z]{{{_LOOKUP_LENGTH + _SECRET_LENGTH}}})$"
)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    kind: KeyKind
    mode: KeyMode
    prefix: str


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    plaintext: str
    prefix: str
    secret_hash: str
    last4: str


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def parse_api_key(text: str) -> ParsedKey | None:
    """The kind, mode and lookup prefix of a well-formed key; `None` for anything else."""
    match = _KEY_PATTERN.match(text)
    if match is None:
        return None
    head = f"{match['kind']}_{match['mode']}_"
    return ParsedKey(
        kind=_KIND_BY_PREFIX[match["kind"]],
        mode=KeyMode(match["mode"]),
        prefix=head + match["body"][:_LOOKUP_LENGTH],
    )


def generate_api_key(kind: KeyKind, mode: KeyMode) -> GeneratedKey:
    head = f"{_KIND_PREFIX[kind]}_{mode.value}_"
    lookup = random_base62(_LOOKUP_LENGTH)
    plaintext = head + lookup + random_base62(_SECRET_LENGTH)
    return GeneratedKey(
        plaintext=plaintext,
        prefix=head + lookup,
        secret_hash=hash_api_key(plaintext),
        last4=plaintext[-4:],
    )


def key_matches(plaintext: str, secret_hash: str) -> bool:
    """Constant-time comparison of a presented key against a stored digest."""
    return hmac.compare_digest(hash_api_key(plaintext), secret_hash)
