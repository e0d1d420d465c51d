"""The sandbox's per-tenant webhook secret: derived, never stored, the same in every process."""

from __future__ import annotations

from paycore.config import Settings
from paycore.server_secret import derive_key


def webhook_secret(settings: Settings, tenant_id: str) -> bytes:
    return derive_key(settings, "sandbox-webhook-secret", tenant_id)
