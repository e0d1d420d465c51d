"""CSRF tokens for the console's forms. Pure.

Before sign-in there is no session: the form carries a random token that must equal the one in a
SameSite=Strict cookie set with the form (double submit). After sign-in, a form's token is an HMAC
of the session id under a key derived from the server secret, so it cannot be made without the
session and needs no storage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(cookie: str | None, field: str | None) -> bool:
    return bool(cookie) and bool(field) and hmac.compare_digest(str(cookie), str(field))


def session_token(key: bytes, session_id: str) -> str:
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


def session_token_matches(key: bytes, session_id: str, field: str | None) -> bool:
    return bool(field) and hmac.compare_digest(session_token(key, session_id), str(field))
