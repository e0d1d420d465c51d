"""The one error envelope, and the exceptions that produce it.

Every error leaves the API as `{"error": {"type", "code", "message", "param"?, "request_id"}}`.
Services raise a subclass of `PaycoreError`; `install_error_handlers` renders it, and renders
Starlette's 404/405 and FastAPI's validation errors in the same envelope. Unhandled exceptions are
turned into a 500 by `paycore.middleware.RequestContextMiddleware`, which also logs them.

    PaycoreError                      500 api_error              internal_error
    ├── InvalidRequest                400 invalid_request_error  (code per case)
    │   └── ValidationFailed          422 invalid_request_error  validation_error (+ param)
    ├── AuthenticationFailed          401 authentication_error   (code per case)
    ├── PermissionDenied              403 permission_error       (code per case)
    ├── NotFound                      404 not_found_error        resource_missing
    ├── Conflict                      409 conflict_error         (code per case)
    ├── IdempotencyError              409/422 idempotency_error  (code per case)
    ├── RateLimited                   429 rate_limit_error       rate_limited (+ Retry-After)
    ├── ProviderError                 502 provider_error         (code per case)
    └── ServiceUnavailable            503 api_error              (code per case)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from paycore.logging import current_request_id, get_logger
from paycore.validation_messages import NOT_AN_OBJECT, error_param, validation_message

log = get_logger(__name__)


class ErrorType(StrEnum):
    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    PERMISSION = "permission_error"
    NOT_FOUND = "not_found_error"
    CONFLICT = "conflict_error"
    IDEMPOTENCY = "idempotency_error"
    RATE_LIMIT = "rate_limit_error"
    PROVIDER = "provider_error"
    API = "api_error"


INTERNAL_ERROR_MESSAGE = (
    "An internal error occurred. It has been logged; quote the request_id when reporting it."
)


class PaycoreError(Exception):
    status_code: int = 500
    error_type: ErrorType = ErrorType.API
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.param = param
        self.headers = dict(headers or {})
        # Objects the caller needs to act on the error (the order a failed checkout left
        # payable), rendered beside the envelope's fields; never secrets of anyone but the caller.
        self.extra = dict(extra or {})


class InvalidRequest(PaycoreError):
    status_code = 400
    error_type = ErrorType.INVALID_REQUEST
    code = "invalid_request"


class ValidationFailed(InvalidRequest):
    status_code = 422
    code = "validation_error"


class AuthenticationFailed(PaycoreError):
    status_code = 401
    error_type = ErrorType.AUTHENTICATION
    code = "invalid_api_key"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class PermissionDenied(PaycoreError):
    status_code = 403
    error_type = ErrorType.PERMISSION
    code = "permission_denied"


class NotFound(PaycoreError):
    status_code = 404
    error_type = ErrorType.NOT_FOUND
    code = "resource_missing"


class Conflict(PaycoreError):
    status_code = 409
    error_type = ErrorType.CONFLICT
    code = "conflict"


class IdempotencyError(PaycoreError):
    status_code = 409
    error_type = ErrorType.IDEMPOTENCY
    code = "idempotency_error"


class RateLimited(PaycoreError):
    status_code = 429
    error_type = ErrorType.RATE_LIMIT
    code = "rate_limited"


class ProviderError(PaycoreError):
    status_code = 502
    error_type = ErrorType.PROVIDER
    code = "provider_error"


class ServiceUnavailable(PaycoreError):
    status_code = 503
    error_type = ErrorType.API
    code = "service_unavailable"


def error_body(
    *,
    error_type: str,
    code: str,
    message: str,
    param: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    error: dict[str, Any] = {"type": error_type, "code": code, "message": message}
    if param is not None:
        error["param"] = param
    error.update({key: value for key, value in (extra or {}).items() if key not in error})
    error["request_id"] = current_request_id()
    return {"error": error}


def error_response(
    status_code: int,
    *,
    error_type: str,
    code: str,
    message: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = error_body(error_type=error_type, code=code, message=message, param=param, extra=extra)
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


_HTTP_STATUS_ERRORS: dict[int, tuple[ErrorType, str, str]] = {
    # FastAPI's own 400: a body it could not parse (the edge refuses bytes that are not UTF-8).
    400: (
        ErrorType.INVALID_REQUEST,
        "invalid_body",
        "The request body could not be read; send JSON with Content-Type: application/json.",
    ),
    404: (ErrorType.NOT_FOUND, "route_not_found", "Unrecognized request URL."),
    405: (
        ErrorType.INVALID_REQUEST,
        "method_not_allowed",
        "This method is not allowed on this URL.",
    ),
}


async def _paycore_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PaycoreError)
    return error_response(
        exc.status_code,
        error_type=exc.error_type,
        code=exc.code,
        message=exc.message,
        param=exc.param,
        headers=exc.headers,
        extra=exc.extra,
    )


def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


def _allowed_methods(request: Request) -> str:
    """Every method the API document lists for this path. Starlette's own 405 names only the
    first route that matched the path, while a path here is often served by several routes."""
    document = request.app.openapi()
    methods: set[str] = set()
    for template, operations in document.get("paths", {}).items():
        if _path_pattern(template).fullmatch(request.url.path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_type, code, message = _HTTP_STATUS_ERRORS.get(
        exc.status_code,
        (ErrorType.INVALID_REQUEST, "http_error", f"{str(exc.detail).rstrip('.')}."),
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return error_response(
        exc.status_code,
        error_type=error_type,
        code=code,
        message=message,
        headers=headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    # Where and why, never the input: a refused value may be a secret (a webhook secret one
    # character short), and redaction by key name cannot see it under `input`.
    log.info(
        "request_validation_failed",
        errors=[{"loc": error.get("loc"), "type": error.get("type")} for error in errors],
    )
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(
            400,
            error_type=ErrorType.INVALID_REQUEST,
            code="invalid_json",
            message="The request body is not valid JSON.",
        )
    first = errors[0] if errors else {"loc": ()}
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") in NOT_AN_OBJECT:
        if "json" not in request.headers.get("content-type", ""):
            # FastAPI reads a body of any other type (or of none) as bytes, never as JSON.
            return error_response(
                415,
                error_type=ErrorType.INVALID_REQUEST,
                code="unsupported_content_type",
                message="The request body must be JSON, sent with Content-Type: application/json.",
            )
        return error_response(
            422,
            error_type=ErrorType.INVALID_REQUEST,
            code="validation_error",
            message="The request body must be a JSON object.",
            param="body",
        )
    return error_response(
        422,
        error_type=ErrorType.INVALID_REQUEST,
        code="validation_error",
        message=validation_message(errors),
        param=error_param(first),
    )


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Connection lost, pool exhausted, lock wait timed out, deadlock: the request may well succeed
    # if sent again, so 503 (not a 500 that says "our bug").
    # The driver's message, not SQLAlchemy's: that one carries the statement and its parameters.
    cause = getattr(exc, "orig", None) or exc
    log.warning("database_unavailable", error=f"{type(cause).__name__}: {cause}"[:500])
    return error_response(
        503,
        error_type=ErrorType.API,
        code="database_unavailable",
        message="The database is not answering; try again shortly.",
        headers={"Retry-After": "1"},
    )


# SQLSTATE classes that say "the database cannot now", not "this request is wrong": connection
# exceptions, insufficient resources (disk full, out of memory, too many connections), operator
# intervention (shutting down, starting up).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Other driver errors: a full disk is a 503 like a lost connection; the rest are our bugs."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str) and state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
        return await _database_unavailable(request, exc)
    log.error("unhandled_exception", error_type=type(exc).__name__, cause=type(orig).__name__, exc_info=exc)
    return error_response(
        500,
        error_type=ErrorType.API,
        code="internal_error",
        message=INTERNAL_ERROR_MESSAGE,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PaycoreError, _paycore_error)
    # ConnectionError and TimeoutError: asyncpg raises them unwrapped when it cannot connect.
    for retryable in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(retryable, _database_unavailable)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
