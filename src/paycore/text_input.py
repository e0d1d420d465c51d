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

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from paycore.errors import InvalidRequest
from paycore.middleware import read_body, replay_body, send_error, whole_body_message
from paycore.unstorable import unstorable_json_field, unstorable_percent_encoded, unstorable_text

# Bodies signed by a provider: checked by their signature, stored as the provider sent them.
_RAW_BODY_PREFIXES = ("/webhooks/",)


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
        # FastAPI parses a body that names no content type as JSON, so this check does too.
        is_json = "json" in content_type or not content_type
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
