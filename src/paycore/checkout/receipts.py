"""Receipt tokens: the storefront's proof that it may see an order.

A token is an HMAC of the order id under a key derived from the server secret: any process can
check it, nothing is stored, and an email written later can carry the same link. Without the
right token an order does not exist for the storefront (404, never 403).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from paycore.config import Settings
from paycore.server_secret import derive_key

RECEIPT_HEADER = "X-Receipt-Token"


def receipt_token(settings: Settings, order_id: str) -> str:
    digest = hmac.new(derive_key(settings, "receipt-token"), order_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def receipt_token_matches(settings: Settings, order_id: str, token: str | None) -> bool:
    if not token:
        return False
    return hmac.compare_digest(receipt_token(settings, order_id), token)
