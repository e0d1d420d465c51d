"""Refuse text that no database can store, at the edge, before anything reaches a query.

PostgreSQL refuses NUL in text (asyncpg raises), and neither driver can encode an unpaired
UTF-16 surrogate (JSON's `"\\ud800"` decodes to one): left to the routes, each was a 500 — also
for anonymous callers. So a request whose path, query string, headers, form fields or JSON strings
(values and keys) carry NUL, an unpaired surrogate or bytes that are not UTF-8 is refused here with
one `400 invalid_characters`, naming where (never echoing the value).

Provider webhook bodies are exempt: their raw bytes are verified against the provider's signature
as received, and refusing a signed event would only make the provider send it again forever.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from paycore.errors import InvalidRequest
from paycore.middleware import read_body, replay_body, send_error, whole_body_message

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Bodies signed by a provider: checked by their signature, stored as the provider sent them.
_RAW_BODY_PREFIXES = ("/webhooks/",)


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


def _refusal(where: str) -> InvalidRequest:
    return InvalidRequest(
        f"The request's {where} contains a character paycore does not accept: NUL, an unpaired "
        "surrogate, or bytes that are not UTF-8.",
        code="invalid_characters",
        param=where,
    )


def unstorable_part(scope: Scope) -> str | None:
    """Which part of the request line or headers is unstorable: `path`, `query` or `header`."""
    raw_path = scope.get("raw_path")
    if unstorable_text(scope["path"]) or (
        isinstance(raw_path, bytes) and unstorable_percent_encoded(raw_path.split(b"?", 1)[0])
    ):
        return "path"
    if unstorable_percent_encoded(scope.get("query_string", b"")):
        return "query"
    if any(b"\x00" in value for _, value in scope.get("headers", ())):
        return "header"
    return None


class TextInputMiddleware:
    """The ASGI step that applies the checks above; bodies it reads are handed on as they came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        part = unstorable_part(scope)
        if part is not None:
            await send_error(send, _refusal(part))
            return
        content_type = Headers(scope=scope).get("content-type", "")
        is_json = "json" in content_type
        is_form = "application/x-www-form-urlencoded" in content_type
        if not (is_json or is_form) or scope["path"].startswith(_RAW_BODY_PREFIXES):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            await self.app(scope, replay_body([{"type": "http.disconnect"}]), send)  # the app sees it
            return
        if is_json:
            where = unstorable_json_field(body)
        else:
            where = "body" if unstorable_percent_encoded(body) else None
        if where is not None:
            await send_error(send, _refusal(where))
            return
        await self.app(scope, replay_body([whole_body_message(body)], receive), send)
