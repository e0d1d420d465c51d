"""Text no database can store: NUL (PostgreSQL refuses it in text and in JSONB) and unpaired
UTF-16 surrogates (no driver can encode them; JSON's `"\\ud800"` decodes to one). Pure functions:
the request edge refuses such text (`paycore.text_input`); the webhook inbox, which must store what
a provider signed, replaces it (`storable_document`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(value: str) -> bool:
    """Whether `value` holds NUL or an unpaired surrogate."""
    return _UNSTORABLE.search(value) is not None


def unstorable_bytes(raw: bytes) -> bool:
    """Whether `raw` holds NUL or is not UTF-8 (an encoded surrogate is not UTF-8 either)."""
    if b"\x00" in raw:
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def unstorable_percent_encoded(raw: bytes) -> bool:
    """The same for a percent-encoded path, query string or form body (`+` is a space there)."""
    return unstorable_bytes(unquote_to_bytes(raw.replace(b"+", b" ")))


def _strings(document: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(document, str):
        yield where, document
    elif isinstance(document, dict):
        for key, value in document.items():
            place = f"{where}.{key}" if where else str(key)
            yield place, key
            yield from _strings(value, place)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _strings(value, f"{where}.{index}" if where else str(index))


def unstorable_json_field(body: bytes) -> str | None:
    """Where a JSON body carries unstorable text: `"body"` for the bytes themselves, else the
    dotted path of the first bad string (`customer.name`); None when it is clean or not JSON
    (then the route's parser answers `invalid_json`). Only a body with a `\\u` escape is parsed
    here: without one, clean bytes cannot decode to a bad string."""
    if unstorable_bytes(body):
        return "body"
    if b"\\u" not in body:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    for where, text in _strings(document, ""):
        if unstorable_text(text):
            return _SAFE_PARAM.sub("?", where)[:200] or "body"
    return None


# The field path goes back to the caller in `param`: keep it printable even when a key is the
# offender.
_SAFE_PARAM = re.compile("[^\x20-\x7e]")


def storable_document(document: Any) -> Any:
    """`document` with NUL and unpaired surrogates replaced by U+FFFD in every string and key."""
    if isinstance(document, str):
        return _UNSTORABLE.sub("\ufffd", document)
    if isinstance(document, dict):
        return {storable_document(key): storable_document(value) for key, value in document.items()}
    if isinstance(document, list):
        return [storable_document(value) for value in document]
    return document
