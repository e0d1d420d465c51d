"""Platform key text: `plat_<12 lookup chars><32 secret chars>`. Pure; no I/O."""

from __future__ import annotations

import re

from paycore.auth.keys import GeneratedKey, hash_api_key
from paycore.ids import random_base62

_LOOKUP_LENGTH = 12
_SECRET_LENGTH = 32
_PATTERN = re.compile(rf"^plat_[0-9A-Za-z]{{{_LOOKUP_LENGTH + _SECRET_LENGTH}}}$")


def parse_platform_key(text: str) -> str | None:
    """The lookup prefix of a well-formed platform key; `None` for anything else."""
    return text[: 5 + _LOOKUP_LENGTH] if _PATTERN.match(text) else None


def generate_platform_key() -> GeneratedKey:
    lookup = random_base62(_LOOKUP_LENGTH)
    plaintext = f"plat_{lookup}{random_base62(_SECRET_LENGTH)}"
    return GeneratedKey(
        plaintext=plaintext,
        prefix=f"plat_{lookup}",
        secret_hash=hash_api_key(plaintext),
        last4=plaintext[-4:],
    )
