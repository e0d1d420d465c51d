"""Pydantic's validation errors as sentences a merchant's developer can act on.

Pydantic words its errors for Python programmers ("Input should be a valid dictionary or object to
extract fields from", "Value error, …"); the API answers in one voice: a sentence that names the
parameter, says what it must be, and ends with a period. `param` names the field at fault, also
when a model-level rule (one field needs another) raised the error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# Pydantic's "<Something> should …" becomes "must …": the rule, addressed to the caller.
_SHOULD = re.compile(r"^(?:Input|String|List|Value|Dictionary|Tuple|Set|Object|Decimal|Data|Bytes) should ")
_VALUE_ERROR_PREFIX = re.compile(r"^(?:Value|Assertion) error, ")
# Errors meaning "this is not an object" (a body that is not JSON, a nested field given a scalar).
NOT_AN_OBJECT = frozenset({"dict_type", "model_type", "model_attributes_type"})
_PLAIN_REASONS = {
    **dict.fromkeys(NOT_AN_OBJECT, "must be a JSON object"),
    "list_type": "must be a JSON array",
}


class FieldValueError(ValueError):
    """A model-level rule broken by one field ("amount_off needs a currency"): raise it from a
    `model_validator` so the error's `param` names that field, not the whole body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def error_param(error: Mapping[str, Any]) -> str | None:
    """("body", "customer", "email") → "customer.email"; the first element names the source."""
    location: list[int | str] = list(error.get("loc", ()))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldValueError):
        location.append(cause.field)
    return param_from_location(location)


def param_from_location(location: Sequence[int | str]) -> str | None:
    parts = [str(part) for part in location[1:]] if len(location) > 1 else [str(p) for p in location]
    return ".".join(parts) or None


def _reason(error: Mapping[str, Any]) -> str:
    plain = _PLAIN_REASONS.get(str(error.get("type")))
    if plain is not None:
        return plain
    message = _VALUE_ERROR_PREFIX.sub("", str(error.get("msg") or "is invalid"))
    return _SHOULD.sub("must ", message).rstrip(". ")


def error_sentence(error: Mapping[str, Any]) -> str:
    param = error_param(error)
    kind = error.get("type")
    if kind == "missing" and param == "body":
        return "The request body is missing; send a JSON object with Content-Type: application/json."
    if kind == "missing":
        return f"Missing required param: {param}."
    if kind == "extra_forbidden":
        return f"Received unknown param: {param}."
    subject = "request body" if param in (None, "body") else param
    return f"Invalid {subject}: {_reason(error)}."


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    return " ".join(error_sentence(error) for error in errors) or "The request is invalid."
