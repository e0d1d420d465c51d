"""Idempotency-Key on every POST of the merchant and storefront APIs, as ASGI middleware: it must
see the raw request body and the final response, which a route dependency cannot.

The middleware does not claim the key or replay: the route's key check does, as its last step
(`idempotency.dependencies.replay_or_claim`), so nothing is replayed to a caller the route would
refuse. The middleware reads the body, leaves the key for that claim, and afterwards saves the
answer of a request whose key was claimed.

Not saved (so a retry runs again): requests that fail authentication, authorization, rate
limiting or validation (401, 403, 422, 429, malformed JSON), and requests whose handler raised.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.db import Database
from paycore.errors import PaycoreError
from paycore.idempotency.dependencies import PENDING_SCOPE_KEY, PendingKey
from paycore.idempotency.service import release_key, request_fingerprint, save_response, validate_key
from paycore.middleware import send_error

HEADER = "idempotency-key"
_NOT_SAVED_STATUSES = frozenset({401, 403, 422, 429})
# Refusals that say "try again" (the request never really ran, or lost a race): not saved, so a
# retry under the same key runs rather than replaying the refusal for a day.
_NOT_SAVED_CODES = frozenset({"invalid_json", "order_changed", "database_unavailable"})


def honours_idempotency_key(method: str, path: str) -> bool:
    """The requests whose Idempotency-Key is read: POSTs to the merchant and storefront APIs."""
    return method == "POST" and path.startswith("/v1/")


def _is_saved(status: int, body: bytes) -> bool:
    if status in _NOT_SAVED_STATUSES:
        return False
    if status in (400, 409, 503):
        try:
            return json.loads(body)["error"]["code"] not in _NOT_SAVED_CODES
        except (ValueError, KeyError, TypeError):
            return True
    return True


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        key = headers.get(HEADER) if headers is not None else None
        if headers is None or key is None or not honours_idempotency_key(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            validate_key(key)
        except PaycoreError as exc:
            await send_error(send, exc)
            return
        body = await _read_body(receive)
        pending = PendingKey(key=key, fingerprint=request_fingerprint(scope["method"], scope["path"], body))
        scope[PENDING_SCOPE_KEY] = pending
        response: dict[str, Any] = {"status": 500, "body": bytearray()}

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
            elif message["type"] == "http.response.body":
                response["body"].extend(message.get("body", b""))
            await send(message)

        database: Database = scope["app"].state.database
        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            if pending.claimed is not None:
                async with database.single_statement() as session:
                    await release_key(session, pending.claimed)
            raise
        # Unclaimed: refused before the claim, replayed, or a route without a tenant key.
        if pending.claimed is None or pending.box is None:
            return
        # One UPDATE (or DELETE): no transaction of its own.
        async with database.single_statement() as session:
            if _is_saved(response["status"], bytes(response["body"])):
                await save_response(
                    session,
                    pending.box,
                    pending.claimed,
                    status=response["status"],
                    body=bytes(response["body"]),
                )
            else:
                await release_key(session, pending.claimed)


async def _read_body(receive: Receive) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.extend(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return bytes(chunks)
