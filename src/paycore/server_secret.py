"""The server secret, and keys derived from it for one purpose each.

The secret is `PAYCORE_CHECKOUT_TOKEN_SECRET` (required in production). Outside production, when
it is unset, a random one is created once in `var/dev-server-secret` (mode 0600) and shared by
every process started from that directory, so receipt links survive a restart in development too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import cache
from pathlib import Path

from paycore.config import Settings
from paycore.logging import get_logger

log = get_logger(__name__)

DEV_SECRET_FILE = Path("var/dev-server-secret")


@cache
def _development_secret(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    value = secrets.token_urlsafe(48).encode()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(value)
    log.warning("development_server_secret_created", path=str(path))
    return value


def server_secret(settings: Settings) -> bytes:
    if settings.checkout_token_secret is not None:
        return settings.checkout_token_secret.get_secret_value().encode()
    assert not settings.is_production, "settings validation requires the secret in production"
    return _development_secret(DEV_SECRET_FILE.resolve())


def derive_key(settings: Settings, purpose: str, *parts: str) -> bytes:
    """A 32-byte key for one purpose (and subject), so no two uses ever share a key."""
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(server_secret(settings), message, hashlib.sha256).digest()
