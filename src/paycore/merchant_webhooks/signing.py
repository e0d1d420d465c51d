"""Standard Webhooks signatures (PROVIDERS.md §6). Pure.

`webhook-signature` is a space-separated list of `v1,<base64>`; the signed content is
`{id}.{timestamp}.{body}`; the key is the base64-decoded secret after `whsec_`. During a secret
rotation both secrets sign, so a receiver holding either accepts the message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_secrets(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign now: the current one, and the one it replaced until its rotation
    window closes (a receiver that has not switched yet still verifies)."""
    if previous and previous_expires_at and previous_expires_at > now:
        return [current, previous]
    return [current]


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets_in_use: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers: `webhook-id` (stable across retries), `webhook-timestamp` (this attempt),
    `webhook-signature` (one entry per secret in use)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets_in_use
        ),
    }
