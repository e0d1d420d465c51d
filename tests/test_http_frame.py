"""The frame every route shares: request ids, the error envelope, metrics, redacted logs."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database
from paycore.logging import configure_logging
from paycore.middleware import json_too_deep
from tests.flows.helpers import buy, create_product, open_shop

SECRET_KEY = "sk_test_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jihgfedcba0123456789ABC"


class Purchase(BaseModel):
    email: str
    amount: int


def _test_routes() -> APIRouter:
    router = APIRouter()

    @router.post("/_test/purchases")
    async def purchase(body: Purchase) -> dict[str, int]:
        return {"amount": body.amount}

    @router.get("/_test/driver/{sqlstate}")
    async def driver_error(sqlstate: str) -> dict[str, str]:
        class DriverError(Exception):
            def __init__(self) -> None:
                super().__init__("the driver's own words")
                self.sqlstate = sqlstate

        raise sa_exc.DBAPIError("INSERT INTO secrets VALUES (%s)", {"p": SECRET_KEY}, DriverError())

    @router.get("/_test/boom/{item_id}")
    async def boom(item_id: str) -> dict[str, str]:
        raise RuntimeError(f"exploded while charging with {SECRET_KEY}")

    return router


@pytest.fixture
def app(db: Database, settings: Settings) -> FastAPI:
    application = create_app(settings, database=db)
    application.include_router(_test_routes())
    return application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://paycore.test"
    ) as client:
        yield client


@pytest.fixture
def log_output() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="DEBUG", json=True, stream=stream)
    return stream


def log_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def assert_envelope(
    response: httpx.Response, *, status: int, error_type: str, code: str
) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


class TestRequestId:
    async def test_a_sane_incoming_id_is_kept_and_echoed(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/health", headers={"X-Request-ID": "lb-7f3a.91:2"})
        assert response.headers["x-request-id"] == "lb-7f3a.91:2"

    async def test_an_id_is_generated_when_missing(self, http: httpx.AsyncClient) -> None:
        first = (await http.get("/health")).headers["x-request-id"]
        second = (await http.get("/health")).headers["x-request-id"]
        assert first.startswith("req_")
        assert first != second

    @pytest.mark.parametrize("incoming", ["has space", "x" * 200, "<script>", "new\\nline", "-leading-dash"])
    async def test_an_insane_id_is_replaced(self, http: httpx.AsyncClient, incoming: str) -> None:
        response = await http.get("/health", headers={"X-Request-ID": incoming})
        assert response.headers["x-request-id"].startswith("req_")

    async def test_the_id_is_on_every_log_line_of_the_request(
        self, http: httpx.AsyncClient, log_output: io.StringIO
    ) -> None:
        await http.post("/_test/purchases", json={"email": "a@b.c"}, headers={"X-Request-ID": "trace-42"})
        lines = [line for line in log_lines(log_output) if line.get("logger", "").startswith("paycore")]
        events = {line["event"] for line in lines}
        assert {"request_validation_failed", "http_request"} <= events
        assert all(line.get("request_id") == "trace-42" for line in lines)


class TestErrorEnvelope:
    async def test_unknown_route_is_404(self, http: httpx.AsyncClient) -> None:
        assert_envelope(
            await http.get("/v1/nothing-here"),
            status=404,
            error_type="not_found_error",
            code="route_not_found",
        )

    async def test_wrong_method_is_405_with_allow(self, http: httpx.AsyncClient) -> None:
        response = await http.delete("/health")
        assert_envelope(response, status=405, error_type="invalid_request_error", code="method_not_allowed")
        assert "GET" in response.headers["allow"]

    async def test_validation_error_is_422_naming_the_field(self, http: httpx.AsyncClient) -> None:
        response = await http.post("/_test/purchases", json={"email": "a@b.c", "amount": "lots"})
        error = assert_envelope(
            response, status=422, error_type="invalid_request_error", code="validation_error"
        )
        assert error["param"] == "amount"
        assert "lots" not in response.text  # the input is never echoed

    async def test_missing_field_is_422(self, http: httpx.AsyncClient) -> None:
        response = await http.post("/_test/purchases", json={"amount": 5})
        error = assert_envelope(
            response, status=422, error_type="invalid_request_error", code="validation_error"
        )
        assert error["param"] == "email"

    async def test_malformed_json_is_400(self, http: httpx.AsyncClient) -> None:
        response = await http.post(
            "/_test/purchases", content=b'{"email": ', headers={"content-type": "application/json"}
        )
        assert_envelope(response, status=400, error_type="invalid_request_error", code="invalid_json")

    async def test_unhandled_exception_is_500_without_internals(
        self, http: httpx.AsyncClient, log_output: io.StringIO
    ) -> None:
        response = await http.get("/_test/boom/1", headers={"X-Request-ID": "boom-1"})
        error = assert_envelope(response, status=500, error_type="api_error", code="internal_error")
        assert error["request_id"] == "boom-1"
        assert "exploded" not in response.text and "Traceback" not in response.text
        (logged,) = [line for line in log_lines(log_output) if line["event"] == "unhandled_exception"]
        assert logged["request_id"] == "boom-1"
        assert "RuntimeError: exploded while charging" in str(logged["exception"])


class TestSecretsNeverReachTheLog:
    async def test_secret_in_header_and_body(self, http: httpx.AsyncClient, log_output: io.StringIO) -> None:
        headers = {"Authorization": f"Bearer {SECRET_KEY}", "X-Api-Key": SECRET_KEY}
        # A body that fails validation is logged by where and why; an exception logs the headers.
        await http.post("/_test/purchases", json={"email": SECRET_KEY, "amount": SECRET_KEY}, headers=headers)
        await http.get("/_test/boom/x", headers=headers)
        await http.get("/v1/tenant", headers=headers)
        output = log_output.getvalue()
        assert "request_validation_failed" in output and "unhandled_exception" in output
        assert SECRET_KEY not in output
        assert SECRET_KEY[8:30] not in output
        assert "[REDACTED]" in output


async def test_a_refused_secret_of_no_known_shape_is_not_logged(
    http: httpx.AsyncClient, db: Database, log_output: io.StringIO
) -> None:
    shop = await open_shop(db)
    response = await http.put("/v1/providers/stripe", json={"webhook_secret": "Sh0rtSe"}, headers=shop.secret)
    assert response.status_code == 422  # too short: refused by validation, which logs why
    output = log_output.getvalue()
    assert "request_validation_failed" in output
    assert "Sh0rtSe" not in output


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestMetrics:
    async def test_requests_are_counted_by_route_template(self, http: httpx.AsyncClient) -> None:
        labels = {"method": "GET", "route": "/_test/boom/{item_id}", "status": "500"}
        before = _sample("paycore_http_requests_total", labels)
        latency_before = _sample(
            "paycore_http_request_duration_seconds_count", {"method": "GET", "route": "/_test/boom/{item_id}"}
        )
        await http.get("/_test/boom/a")
        await http.get("/_test/boom/b")
        assert _sample("paycore_http_requests_total", labels) == before + 2
        assert (
            _sample(
                "paycore_http_request_duration_seconds_count",
                {"method": "GET", "route": "/_test/boom/{item_id}"},
            )
            == latency_before + 2
        )

    async def test_unmatched_paths_share_one_label(self, http: httpx.AsyncClient) -> None:
        labels = {"method": "GET", "route": "<unmatched>", "status": "404"}
        before = _sample("paycore_http_requests_total", labels)
        await http.get("/random/a")
        await http.get("/random/b")
        assert _sample("paycore_http_requests_total", labels) == before + 2

    async def test_unknown_methods_share_one_label(self, http: httpx.AsyncClient) -> None:
        labels = {"method": "<other>", "route": "/health", "status": "405"}
        before = _sample("paycore_http_requests_total", labels)
        for probe in ("PROBE-TENANT-A1", "PROBE-TENANT-A2"):  # an anonymous caller minting series
            assert (await http.request(probe, "/health")).status_code == 405
        assert _sample("paycore_http_requests_total", labels) == before + 2
        exposed = (await http.get("/metrics")).text
        assert "PROBE-TENANT" not in exposed

    async def test_metrics_endpoint_exposes_them(self, http: httpx.AsyncClient) -> None:
        await http.get("/health")
        response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert 'paycore_http_requests_total{method="GET",route="/health",status="200"}' in response.text
        assert "paycore_http_request_duration_seconds_bucket" in response.text


class TestOpenApi:
    async def test_openapi_and_docs_are_served(self, http: httpx.AsyncClient) -> None:
        spec = (await http.get("/openapi.json")).json()
        assert "/v1/tenant" in spec["paths"]
        assert (await http.get("/docs")).status_code == 200


class TestDatabaseOutage:
    async def test_an_unreachable_database_is_503_not_500(self) -> None:
        from paycore.auth.keys import generate_api_key
        from paycore.auth.models import KeyKind, KeyMode
        from paycore.db import create_engine
        from tests.conftest import make_settings

        settings = make_settings(
            database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", database_connect_timeout_seconds=1
        )
        database = Database(create_engine(settings))
        app = create_app(settings, database=database)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                well_formed = generate_api_key(KeyKind.SECRET, KeyMode.TEST).plaintext
                response = await client.get("/v1/tenant", headers={"Authorization": f"Bearer {well_formed}"})
        finally:
            await database.dispose()
        error = assert_envelope(response, status=503, error_type="api_error", code="database_unavailable")
        assert "127.0.0.1" not in str(error["message"])
        assert response.headers["retry-after"] == "1"


class TestBodyLimit:
    async def test_a_declared_oversized_body_is_413_before_it_is_read(self, http: httpx.AsyncClient) -> None:
        response = await http.post(
            "/_test/purchases",
            content=b"x" * (1_048_576 + 1),
            headers={"content-type": "application/json"},
        )
        assert_envelope(response, status=413, error_type="invalid_request_error", code="payload_too_large")

    async def test_a_streamed_oversized_body_is_413_as_soon_as_it_passes_the_limit(
        self, http: httpx.AsyncClient
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: only counting catches it
            for _ in range(40):
                yield b"[" * 65_536

        response = await http.post(
            "/webhooks/sandbox/anyone", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_envelope(response, status=413, error_type="invalid_request_error", code="payload_too_large")

    async def test_a_body_within_the_limit_goes_through(self, http: httpx.AsyncClient) -> None:
        response = await http.post("/_test/purchases", json={"email": "a@b.c", "amount": 5})
        assert (response.status_code, response.json()) == (200, {"amount": 5})


class TestSecurityHeaders:
    async def test_html_pages_get_a_policy_that_forbids_framing(
        self, http: httpx.AsyncClient, client: httpx.AsyncClient, db: Database
    ) -> None:
        shop = await open_shop(db)
        product = await create_product(client, shop)
        bought = await buy(client, shop, product["id"])
        page = await http.get(f"/sandbox/pay/{bought['payment']['id']}")
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert "script-src" not in policy  # the pay page runs no script
        assert (page.headers["referrer-policy"], page.headers["x-frame-options"]) == ("no-referrer", "DENY")
        assert page.headers["x-content-type-options"] == "nosniff"

    async def test_json_gets_nosniff_and_no_page_policy(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/health")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers

    async def test_the_api_docs_may_load_their_scripts(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/docs")
        assert "https://cdn.jsdelivr.net" in response.headers["content-security-policy"]


class TestMethodNotAllowed:
    async def test_allow_names_every_method_of_the_path(self, http: httpx.AsyncClient) -> None:
        response = await http.request("OPTIONS", "/v1/products")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"  # two routes serve this path


class TestJsonDepth:
    async def test_json_nested_past_the_limit_is_400_before_parsing(self, http: httpx.AsyncClient) -> None:
        body = b'{"a":' * 65 + b"1" + b"}" * 65
        response = await http.post(
            "/_test/purchases", content=body, headers={"content-type": "application/json"}
        )
        assert_envelope(response, status=400, error_type="invalid_request_error", code="json_too_deep")

    async def test_brackets_inside_strings_do_not_count_and_the_body_arrives_whole(
        self, http: httpx.AsyncClient
    ) -> None:
        email = "[" * 100 + "{" * 100 + "@example.com"
        response = await http.post("/_test/purchases", json={"email": email, "amount": 7})
        assert (response.status_code, response.json()) == (200, {"amount": 7})


@pytest.mark.parametrize(
    ("body", "deep"),
    [(b"[" * 64 + b"]" * 64, False), (b"[" * 65 + b"]" * 65, True), (b'["\\"' + b"[" * 100 + b'"]', False)],
)
def test_depth_scanner(body: bytes, deep: bool) -> None:
    assert json_too_deep(body) is deep


class TestDriverErrors:
    async def test_a_full_disk_is_503_like_a_lost_connection(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/_test/driver/53100")  # disk_full
        assert_envelope(response, status=503, error_type="api_error", code="database_unavailable")

    async def test_any_other_driver_error_is_500_without_the_statement(
        self, http: httpx.AsyncClient, log_output: io.StringIO
    ) -> None:
        response = await http.get("/_test/driver/42P01")  # undefined_table: our bug
        assert_envelope(response, status=500, error_type="api_error", code="internal_error")
        assert SECRET_KEY not in response.text and "INSERT" not in response.text
