"""Sealing secrets at rest: AES-256-GCM under a keyring, with key rotation.

`PAYCORE_SECRETS_KEY` is `kid:base64key[,kid:base64key…]`. The first key seals; every key opens,
so a new key is put first, `paycore providers reseal` rewrites every row under it, and the old key
is dropped after. A sealed value is `v1.<kid>.<base64(nonce ‖ ciphertext ‖ tag)>`; the caller's
`context` (tenant, provider, mode) is authenticated with it, so a value copied to another row
does not open. Pure: no database, no settings object.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_NONCE_BYTES = 12
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SecretsKeyError(ValueError):
    """The keyring setting is malformed (the message never contains key material)."""


class SealError(Exception):
    """A sealed value that does not open: unknown key id, tampered, or sealed for another row."""


def _decode_key(kid: str, encoded: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise SecretsKeyError(f"key {kid!r} is not base64") from None
    if len(raw) != 32:
        raise SecretsKeyError(f"key {kid!r} must decode to 32 bytes, not {len(raw)}")
    return raw


def parse_keyring(value: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        kid, separator, encoded = entry.partition(":")
        if not separator or not _KID.match(kid):
            raise SecretsKeyError("each key must be written 'kid:base64key' (kid: letters, digits, - or _)")
        if any(kid == seen for seen, _ in keys):
            raise SecretsKeyError(f"key id {kid!r} appears twice")
        keys.append((kid, _decode_key(kid, encoded.strip())))
    if not keys:
        raise SecretsKeyError("no key given")
    return keys


def new_key_line(kid: str) -> str:
    """A fresh key, written as the setting takes it."""
    if not _KID.match(kid):
        raise SecretsKeyError("a key id is 1-32 letters, digits, - or _")
    return f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


class SecretsBox:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise SecretsKeyError("no key given")
        self._keys = dict(keys)
        self.primary_kid = keys[0][0]

    @classmethod
    def from_setting(cls, value: str) -> SecretsBox:
        return cls(parse_keyring(value))

    def seal(self, plaintext: bytes, *, context: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._keys[self.primary_kid]).encrypt(nonce, plaintext, context)
        return f"{_VERSION}.{self.primary_kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, *, context: bytes) -> bytes:
        version, _, rest = value.partition(".")
        kid, _, encoded = rest.partition(".")
        if version != _VERSION or not encoded:
            raise SealError("not a sealed value")
        key = self._keys.get(kid)
        if key is None:
            raise SealError(f"sealed with key {kid!r}, which PAYCORE_SECRETS_KEY does not hold")
        try:
            raw = base64.urlsafe_b64decode(encoded)
            return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context)
        except (binascii.Error, ValueError, InvalidTag):
            raise SealError("the sealed value does not open (tampered, or sealed for another row)") from None

    @staticmethod
    def kid_of(value: str) -> str:
        return value.split(".", 2)[1] if value.count(".") >= 2 else ""
