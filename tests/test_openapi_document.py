"""The OpenAPI document is complete enough to generate a client from: every operation described, a
named key scheme on every guarded one (matching what the route enforces), Idempotency-Key on every
POST that honours it, typed answers, and the merchant events as OpenAPI 3.1 `webhooks`.

Walks every operation of the served document, so a route added later is checked without anyone
listing it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from paycore.auth.models import KeyKind
from paycore.db import Database
from paycore.merchant_webhooks.schemas import EVENT_TYPES
from tests.factories import make_api_key, make_tenant

# Answered to anyone: probes, provider webhooks (signed, not keyed), the sandbox's customer side.
PUBLIC = re.compile(r"^/(health|ready|webhooks/|sandbox/)")
# The POSTs the Idempotency-Key middleware reads the header on: the merchant and storefront APIs.
IDEMPOTENT_POST = re.compile(r"^/v1/(?!platform/)")
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def untyped_objects(
    schema: dict[str, Any], where: str, schemas: dict[str, Any], seen: frozenset[str]
) -> list[str]:
    """Places in `schema` that are objects of unknown shape and do not even say what they hold."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else untyped_objects(schemas[name], name, schemas, seen | {name})
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += untyped_objects(option, where, schemas, seen)
    if schema.get("type") == "array":
        found += untyped_objects(schema.get("items", {}), f"{where}[]", schemas, seen)
    if schema == {} or schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not properties and extra in (None, True, {}) and not schema.get("description"):
            found.append(where)
        for name, field in properties.items():
            # A free-form field is acceptable when its description says what it holds.
            if field.get("description"):
                continue
            found += untyped_objects(field, f"{where}.{name}", schemas, seen)
        if isinstance(extra, dict) and extra:
            found += untyped_objects(extra, f"{where}{{}}", schemas, seen)
    return found


class TestEveryOperation:
    async def test_has_a_summary_and_a_description(self, document: dict[str, Any]) -> None:
        missing = [
            (method, path)
            for method, path, operation in operations(document)
            if not operation.get("summary") or not operation.get("description")
        ]
        assert missing == []
        assert len(operations(document)) >= 60

    async def test_has_a_unique_operation_id_a_client_can_name_a_function_after(
        self, document: dict[str, Any]
    ) -> None:
        ids = [operation["operationId"] for _, _, operation in operations(document)]
        assert len(ids) == len(set(ids))
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in ids), ids
        assert "create_product" in ids
        assert "checkout" in ids

    async def test_answers_have_a_declared_shape(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        untyped: list[str] = []
        for method, path, operation in operations(document):
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content is None:
                    continue
                # The answer itself must be a model, not an object of any shape.
                schema = content.get("schema", {})
                if "$ref" not in schema and schema.get("type") != "array":
                    untyped.append(f"{method} {path} {status}: {schema}")
                    continue
                untyped += [
                    f"{method} {path} {status}: {place}"
                    for place in untyped_objects(schema, "", schemas, frozenset())
                ]
        assert untyped == []

    async def test_the_ops_answers_are_models(self, document: dict[str, Any]) -> None:
        def schema_of(path: str, method: str = "get", status: str = "200") -> str:
            return document["paths"][path][method]["responses"][status]["content"]["application/json"][
                "schema"
            ]["$ref"]

        assert schema_of("/ready").endswith("/ReadyOut")
        assert schema_of("/ready", status="503").endswith("/NotReadyOut")
        assert schema_of("/ops/summary").endswith("/OpsSummaryOut")
        assert schema_of("/webhooks/{provider}/{tenant_slug}", "post").endswith("/WebhookReceivedOut")


class TestSecuritySchemes:
    async def test_the_three_keys_are_named_bearer_schemes(self, document: dict[str, Any]) -> None:
        schemes = document["components"]["securitySchemes"]
        assert set(schemes) == {"SecretKey", "PublishableKey", "PlatformKey"}
        assert all(scheme == {**scheme, "type": "http", "scheme": "bearer"} for scheme in schemes.values())

    async def test_every_guarded_operation_names_its_keys(self, document: dict[str, Any]) -> None:
        schemes = set(document["components"]["securitySchemes"])
        for method, path, operation in operations(document):
            named = {name for requirement in operation.get("security", []) for name in requirement}
            if PUBLIC.match(path):
                assert named == set(), (method, path)
            else:
                assert named and named <= schemes, (method, path)
                if path.startswith("/v1/platform/"):
                    assert named == {"PlatformKey"}, (method, path)

    async def test_the_schemes_match_what_each_route_accepts(
        self, db: Database, client: httpx.AsyncClient, document: dict[str, Any]
    ) -> None:
        """A publishable key reaches exactly the operations that list PublishableKey: the document
        tells a client the truth about which key to send."""
        async with db.session() as session:
            tenant = await make_tenant(session)
            created = await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE)
        headers = {"Authorization": f"Bearer {created.plaintext}"}
        checked = 0
        for method, path, operation in operations(document):
            if PUBLIC.match(path):
                continue
            named = {name for requirement in operation["security"] for name in requirement}
            url = re.sub(r"\{[^}]+\}", "x_missing", path)
            response = await client.request(method, url, headers=headers, json={})
            refused = response.status_code in (401, 403)
            assert refused is ("PublishableKey" not in named), (method, path, response.status_code)
            checked += 1
        assert checked >= 50


class TestIdempotencyKey:
    async def test_every_merchant_and_storefront_post_documents_it(self, document: dict[str, Any]) -> None:
        for method, path, operation in operations(document):
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            honoured = method == "POST" and bool(IDEMPOTENT_POST.match(path))
            assert ("Idempotency-Key" in headers) is honoured, (method, path)

    async def test_the_header_says_how_long_a_key_may_be(self, document: dict[str, Any]) -> None:
        (header,) = [
            p
            for p in document["paths"]["/v1/checkout"]["post"]["parameters"]
            if p["name"] == "Idempotency-Key"
        ]
        assert header["in"] == "header"
        assert header["required"] is False
        assert header["schema"]["maxLength"] == 255
        assert header["description"]


class TestMerchantEvents:
    async def test_every_event_type_is_an_openapi_webhook(self, document: dict[str, Any]) -> None:
        assert document["openapi"].startswith("3.1")
        assert set(document["webhooks"]) == set(EVENT_TYPES)

    async def test_each_carries_the_standard_webhooks_headers_and_its_typed_body(
        self, document: dict[str, Any]
    ) -> None:
        schemas = document["components"]["schemas"]
        for event_type, item in document["webhooks"].items():
            operation = item["post"]
            assert operation["summary"] and operation["description"], event_type
            headers = {p["name"] for p in operation["parameters"] if p["in"] == "header" and p["required"]}
            assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}, event_type
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            model = schemas[body["$ref"].rsplit("/", 1)[-1]]
            assert model["properties"]["type"]["const"] == event_type
            assert {"id", "type", "created", "livemode", "data"} <= set(model["required"])
            assert untyped_objects(body, event_type, schemas, frozenset()) == []
