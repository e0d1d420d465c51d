"""structlog set-up: JSON in production, console in development, secrets redacted everywhere.

The redaction step runs last before rendering, after exceptions are formatted to text, so a
secret inside an exception message or a traceback is caught as well as one in an event field.
Both structlog loggers and the standard library loggers (uvicorn, SQLAlchemy, Alembic) go through it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from typing import IO, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"

_request_id: ContextVar[str | None] = ContextVar("paycore_request_id", default=None)

# Key names whose values are secret whatever they look like (matched as substrings, lower case).
_SECRET_KEY_PARTS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "signature",
    "private_key",
    "credential",
    "session",
)

# Value shapes that are secret wherever they appear: our own keys and webhook secrets, bearer
# credentials, and the password part of a URL.
_SECRET_VALUE_PATTERNS = (
    re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9_]+"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> object:
    """Bind the id for this task; returns a token for `reset_request_id`."""
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return _request_id.set(request_id)


def reset_request_id(token: object) -> None:
    structlog.contextvars.unbind_contextvars("request_id")
    _request_id.reset(token)  # type: ignore[arg-type]


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    for pattern in _SECRET_VALUE_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact(value: Any) -> Any:
    """Return `value` with secrets replaced, recursing through mappings and sequences."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", errors="replace"))
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


def redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    redacted = redact(event_dict)
    assert isinstance(redacted, dict)
    return redacted


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


def configure_logging(*, level: str, json: bool, stream: IO[str] | None = None) -> None:
    """Route structlog and stdlib logging through one redacting formatter on `stream`."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=stream is None and sys.stdout.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log is replaced by ours (with route template and request id).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    # Alembic announces its context on every status read (`/ready` polls it); `paycore db`
    # commands print their own summary.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # The Stripe SDK logs request and response bodies at DEBUG: client secrets and customers'
    # details, which must never reach a log whatever paycore's own level is.
    logging.getLogger("stripe").setLevel(max(logging.INFO, root.level))
    structlog.configure(
        processors=[
            # First: an event below the level is dropped before any processor works on it.
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def cache_loggers() -> None:
    """For a server process, once logging is configured for good: each module's logger is built
    on its first call instead of on every call. Not in tests: `structlog.testing.capture_logs`
    reconfigures structlog, which a logger built earlier would not see."""
    structlog.configure(cache_logger_on_first_use=True)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
