"""The outermost layer of every HTTP request: request id, access log, metrics, last-resort 500.

Pure ASGI rather than `BaseHTTPMiddleware`: it adds no task per request and sees the final
status even of streamed responses.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.errors import (
    INTERNAL_ERROR_MESSAGE,
    ErrorType,
    InvalidRequest,
    PaycoreError,
    error_body,
    error_response,
)
from paycore.ids import new_id
from paycore.logging import get_logger, reset_request_id, set_request_id
from paycore.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS, OTHER_METHOD, UNMATCHED_ROUTE

log = get_logger("paycore.http")
_access_log = logging.getLogger("paycore.http")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it is a plain token: it lands in logs and response headers.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Probes and scrapes are logged at debug so they do not drown the access log.
_QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def choose_request_id(incoming: str | None) -> str:
    if incoming and _SANE_REQUEST_ID.match(incoming):
        return incoming
    return new_id("req")


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


_METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """Any token is a method to some servers: a caller must not mint a series per request."""
    return method if method in _METRIC_METHODS else OTHER_METHOD


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = choose_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        token = set_request_id(request_id)
        started = time.perf_counter()
        response: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                response["status"] = message["status"]
                response["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            log.exception(
                "unhandled_exception",
                method=scope["method"],
                path=scope["path"],
                headers=dict(Headers(scope=scope)),
            )
            response["status"] = 500
            if not response["started"]:
                await _send_internal_error(send_with_request_id)
        finally:
            elapsed = time.perf_counter() - started
            method, route, status = (
                scope["method"],
                route_template(scope),
                response["status"],
            )
            counted, timed = _series(method_label(method), route, status)
            counted.inc()
            timed.observe(elapsed)
            quiet = scope["path"] in _QUIET_PATHS
            # Checked here: a probe's line is built (processors, timestamp) only if it is written.
            if not quiet or _access_log.isEnabledFor(logging.DEBUG):
                (log.debug if quiet else log.info)(
                    "http_request",
                    method=method,
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    client=(scope.get("client") or (None,))[0],
                )
            reset_request_id(token)


# The labelled children of the two HTTP metrics, found once per (method, route, status) instead
# of through `labels()` (its lock and label checks) on every request. Bounded: methods are
# `method_label`'s few, routes are the app's templates, statuses are HTTP's.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    found = _SERIES.get((method, route, status))
    if found is None:
        found = (
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            HTTP_LATENCY.labels(method=method, route=route),
        )
        _SERIES[(method, route, status)] = found
    return found


async def send_json(send: Send, status: int, body: bytes, extra_headers: list[tuple[bytes, bytes]]) -> None:
    """A whole JSON response, from a middleware (outside FastAPI's error handlers)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: PaycoreError) -> None:
    """`error` in the one envelope, with its status and headers, from a middleware."""
    # Rendered as the route handlers render it (JSONResponse: compact, UTF-8), so a refusal from
    # the edge reads byte for byte like one from a route.
    body = JSONResponse(None).render(
        error_body(error_type=error.error_type, code=error.code, message=error.message, param=error.param)
    )
    headers = [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send_json(send, error.status_code, body, headers)


async def _send_internal_error(send: Send) -> None:
    await send_error(send, PaycoreError(INTERNAL_ERROR_MESSAGE))


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in the one error envelope instead of
    a plain-text body (its CORS headers kept: they say what would have been allowed)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return error_response(
            400,
            error_type=ErrorType.INVALID_REQUEST,
            code="cors_refused",
            message=f"This cross-origin request is not allowed (refused: {refused}).",
            headers=headers,
        )


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse a request body over `limit` bytes with 413 before anything reads it whole: at once
    when `Content-Length` says so, or as soon as a streamed body passes the limit."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_error(
            send,
            InvalidRequest(
                f"The request body is larger than {self.limit} bytes.",
                code="payload_too_large",
                status_code=413,
            ),
        )


# paycore's own pages (the sandbox pay page; the admin console later) load nothing from elsewhere,
# run no script, and are never framed. The API docs pages load Swagger UI / ReDoc from jsDelivr.
_PAGE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; worker-src blob:; base-uri 'none'; frame-ancestors 'none'"
)
_DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


class SecurityHeadersMiddleware:
    """`nosniff` on every response; on HTML, a content security policy that also forbids framing
    (clickjacking), no referrer leaving the page, and `X-Frame-Options` for older browsers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    docs = scope["path"] in _DOCS_PATHS
                    headers.setdefault("content-security-policy", _DOCS_CSP if docs else _PAGE_CSP)
                    headers.setdefault("referrer-policy", "no-referrer")
                    headers.setdefault("x-frame-options", "DENY")
            await send(message)

        await self.app(scope, receive, with_headers)


MAX_JSON_DEPTH = 64


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than `limit` (brackets inside strings do not
    count). Fast path: a body with fewer brackets than the limit cannot."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class JsonDepthMiddleware:
    """Refuse JSON nested deeper than any paycore or provider document goes (400), before a
    parser recurses into it. The body (already size-limited) is read here and handed on as is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = Headers(scope=scope).get("content-type", "") if scope["type"] == "http" else ""
        if "json" not in content_type:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            await self.app(scope, replay_body([{"type": "http.disconnect"}]), send)  # the app sees it
            return
        if json_too_deep(body):
            await send_error(
                send,
                InvalidRequest(
                    f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.", code="json_too_deep"
                ),
            )
            return
        await self.app(scope, replay_body([whole_body_message(body)], receive), send)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (already size-limited), or None when the client left first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def whole_body_message(body: bytes) -> Message:
    return {"type": "http.request", "body": body, "more_body": False}


def replay_body(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
