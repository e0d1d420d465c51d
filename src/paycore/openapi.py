"""The OpenAPI document at `/openapi.json`: what FastAPI draws from the routes, plus what it cannot
see — the error envelope on every refusal, the Idempotency-Key header the middleware reads, and the
events paycore sends to merchants (the OpenAPI 3.1 `webhooks` section).

Complete enough that a generated client (openapi-python-client) runs the money path; a test walks
every operation so a new route cannot leave it incomplete.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic.json_schema import models_json_schema

from paycore.auth.dependencies import IDEMPOTENT_KEY_CHECKS
from paycore.idempotency.middleware import honours_idempotency_key
from paycore.idempotency.service import MAX_KEY_LENGTH
from paycore.merchant_webhooks.events import EVENTS

_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "description": (
        "Any unique string (a UUID): a retry with the same key and body gets the first answer "
        "again (header `Idempotent-Replayed: true`) instead of doing the work twice. The same key "
        "for another request is 422 `idempotency_key_reused`; a retry while the first still runs "
        "is 409 `idempotency_key_in_use`. Keys are kept at least 24 hours, per API key."
    ),
}

# Standard Webhooks (standardwebhooks.com): how a merchant checks that an event came from paycore.
_STANDARD_WEBHOOK_HEADERS: list[dict[str, Any]] = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The event's id, the same on every retry: drop a repeat you have handled.",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Unix seconds of this attempt; refuse one far from now (replay).",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": (
            "Space-separated `v1,<base64>` HMAC-SHA256 signatures of `{webhook-id}.{webhook-timestamp}."
            "{body}` under the endpoint's `whsec_` secret (two while a rotated secret is still valid)."
        ),
    },
]


def operation_id(route: APIRoute) -> str:
    """The route function's name (`create_product`, `checkout`): what a generated client calls the
    operation. Route function names are unique across the app; FastAPI warns on a repeat."""
    return route.name


def _claims_idempotency_key(dependant: Dependant) -> bool:
    return any(
        sub.call in IDEMPOTENT_KEY_CHECKS or _claims_idempotency_key(sub) for sub in dependant.dependencies
    )


def _document_idempotency_keys(app: FastAPI, paths: dict[str, Any]) -> None:
    """The header on every POST whose route claims the key (its key check does, see
    `auth.dependencies`) and whose path the middleware reads it on."""
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path, dependant = route.path_format, route.dependant
        if "POST" not in (route.methods or ()) or path is None or dependant is None:
            continue
        if honours_idempotency_key("POST", path) and _claims_idempotency_key(dependant):
            paths[path]["post"].setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)


def _merchant_webhooks(schemas: dict[str, Any]) -> dict[str, Any]:
    """One entry per event type: what paycore POSTs to a merchant's endpoint, and its headers."""
    _, definitions = models_json_schema(
        [(model, "validation") for model, _ in EVENTS.values()],
        ref_template="#/components/schemas/{model}",
    )
    schemas.update(definitions.get("$defs", {}))
    webhooks: dict[str, Any] = {}
    for event_type, (model, when) in EVENTS.items():
        body = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        webhooks[event_type] = {
            "post": {
                "tags": ["merchant events"],
                "summary": event_type,
                "description": (
                    f"{when}\n\nSent to every enabled endpoint subscribed to `{event_type}` (or `*`), "
                    "signed per Standard Webhooks. Retried on a non-2xx answer or no answer within "
                    "15 seconds: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; events about one order "
                    "arrive in order."
                ),
                "operationId": f"event_{event_type.replace('.', '_')}",
                "parameters": _STANDARD_WEBHOOK_HEADERS,
                "requestBody": {"required": True, "content": {"application/json": body}},
                "responses": {"2XX": {"description": "Received: paycore stops retrying this event."}},
            }
        }
    return webhooks


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        paths: dict[str, Any] = document.get("paths", {})
        for operations in paths.values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    # FastAPI documents its own 422 body, and an HTML route's errors as HTML;
                    # paycore answers every error in its JSON envelope. A route's own error
                    # statuses (a 409 described in words) get the envelope too.
                    if code in ("422", "4XX", "5XX") or (code[0] in "45" and "content" not in response):
                        response["content"] = _ERROR_CONTENT
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        _document_idempotency_keys(app, paths)
        document["webhooks"] = _merchant_webhooks(schemas)
        app.openapi_schema = document
    return app.openapi_schema
