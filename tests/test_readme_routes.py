"""The README's routes and the app's routes are the same set: every path the README names is served,
and every route the app serves is named in the README, so the API table cannot drift again."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from paycore.app import create_app
from tests.conftest import make_settings

README = Path(__file__).resolve().parent.parent / "README.md"

# Pages and plumbing the OpenAPI document leaves out on purpose (include_in_schema=False), with the
# method that reaches each; a test below keeps this list true.
OUTSIDE_OPENAPI = {
    "/admin": "GET",
    "/admin/login": "GET",
    "/admin/logout": "POST",
    "/metrics": "GET",
    "/docs": "GET",
    "/openapi.json": "GET",
}
ANY = "{}"  # a path segment standing for any one value: `{id}`, `prod_…`, `$PRODUCT`


def _readme_paths() -> set[str]:
    """Every path the README names: code spans like `/v1/orders` or `POST /v1/checkout`, the
    API table's `/v1/orders` (+ `/{id}`, `/{id}/cancel`), and the `$API/…` of its shell blocks."""
    readme = README.read_text()
    paths: set[str] = set()
    suffixes: set[str] = set()
    for base, listed in re.findall(r"`(/[^`]*)` \(\+ ([^)]*)\)", readme):
        for suffix in re.findall(r"`(/[^`]*)`", listed):
            suffixes.add(suffix)
            paths.add(base + suffix)
    for span in re.findall(r"`([^`\n]+)`", readme):
        match = re.fullmatch(r"(?:(?:GET|POST|PUT|PATCH|DELETE) )?(/\S*)", span)
        if match and match.group(1) not in suffixes:
            paths.add(match.group(1))
    for block in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL):
        paths.update(re.findall(r"\$API(/[^\s\"']*)", block))
    return paths


def _shape(path: str) -> tuple[str, ...]:
    """A path as segments, with every placeholder or example value as ANY."""
    path = path.split("?", 1)[0].rstrip("/")
    return tuple(
        ANY if re.fullmatch(r"\{[^}]*\}", segment) or "…" in segment or "$" in segment else segment
        for segment in path.split("/")[1:]
    )


def _names(readme_path: str, route: str) -> bool:
    """Whether the README's path denotes the route (an OpenAPI path template or a literal path).
    A literal value in the README may fill a parameter (`/webhooks/sandbox/demo`); a placeholder
    must sit where the route has one; a final `…` stands for every route below."""
    named, served = _shape(readme_path), _shape(route)
    if readme_path.endswith("/…"):
        return served[: len(named) - 1] == named[:-1] and len(served) >= len(named)
    return len(named) == len(served) and all(
        mine == theirs or theirs == ANY for mine, theirs in zip(named, served, strict=True)
    )


def _openapi_paths() -> set[str]:
    return set(create_app(make_settings()).openapi()["paths"])


class TestTheReadmeNamesOnlyRoutesThatExist:
    def test_every_path_the_readme_names_is_served(self) -> None:
        routes = _openapi_paths() | set(OUTSIDE_OPENAPI)
        named = _readme_paths()
        assert "/v1/checkout" in named and "/v1/products/{id}/inventory" in named  # the parser works
        missing = sorted(path for path in named if not any(_names(path, route) for route in routes))
        assert not missing, f"the README names paths paycore does not serve: {missing}"

    async def test_the_routes_outside_the_openapi_document_answer(self, client: httpx.AsyncClient) -> None:
        documented = _openapi_paths()
        for path, method in OUTSIDE_OPENAPI.items():
            assert path not in documented, f"{path} is in the OpenAPI document: drop it from the list"
            response = await client.request(method, path, follow_redirects=False)
            assert response.status_code in (200, 303), f"{method} {path} answered {response.status_code}"


class TestTheReadmeNamesEveryRoute:
    def test_every_route_in_the_openapi_document_is_in_the_readme(self) -> None:
        named = {path for path in _readme_paths() if not path.endswith("/…")}  # each route by name
        left_out = sorted(
            route for route in _openapi_paths() if not any(_names(path, route) for path in named)
        )
        assert not left_out, f"routes the README's API table leaves out: {left_out}"

    def test_every_page_outside_the_openapi_document_is_in_the_readme(self) -> None:
        named = _readme_paths()
        left_out = sorted(route for route in OUTSIDE_OPENAPI if route not in named)
        assert not left_out, f"pages the README leaves out: {left_out}"
