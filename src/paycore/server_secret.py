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
import tempfile
from functools import cache
from pathlib import Path

from paycore.config import Settings
from paycore.logging import get_logger

log = get_logger(__name__)

DEV_SECRET_FILE = Path("var/dev-server-secret")


@cache
def _development_secret(path: Path) -> bytes:
    """Read it, or create it atomically: written to a private temp file, then hard-linked into
    place, so a process starting at the same moment reads a whole secret or loses the race."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".dev-secret-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_urlsafe(48).encode())
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)
            log.warning("development_server_secret_created", path=str(path))
        except FileExistsError:
            pass  # another process won; use its secret
    finally:
        os.unlink(temporary)
    return path.read_bytes().strip()


def server_secret(settings: Settings) -> bytes:
    if settings.checkout_token_secret is not None:
        return settings.checkout_token_secret.get_secret_value().encode()
    assert not settings.is_production, "settings validation requires the secret in production"
    return _development_secret(DEV_SECRET_FILE.resolve())


def derive_key(settings: Settings, purpose: str, *parts: str) -> bytes:
    """A 32-byte key for one purpose (and subject), so no two uses ever share a key."""
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(server_secret(settings), message, hashlib.sha256).digest()
