"""Fakes of the provisioning side's third parties, written from their documented APIs: the
operator's Pterodactyl panel (Application API)."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

import httpx

PANEL_URL = "https://panel.example"
PANEL_KEY = "ptla_test"


class FakePanel:
    """The parts of Pterodactyl's Application API the adapter uses: look a server up by external
    id, create a server. With `timeout_after_create`, the first creation succeeds on the panel but
    its answer never arrives (the client times out reading it)."""

    REQUIRED = ("name", "user", "egg", "docker_image", "startup", "environment", "limits", "feature_limits")

    def __init__(self, *, timeout_after_create: bool = False) -> None:
        self.timeout_after_create = timeout_after_create
        self.servers: dict[int, dict[str, Any]] = {}
        self.creations: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.unauthorized = 0
        self._ids = count(42)

    @staticmethod
    def _error(status: int, code: str, detail: str) -> httpx.Response:
        return httpx.Response(
            status, json={"errors": [{"code": code, "status": str(status), "detail": detail}]}
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "panel.example":
            return httpx.Response(404)
        self.calls.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {PANEL_KEY}":
            self.unauthorized += 1
            return self._error(401, "AuthenticationException", "Unauthenticated.")
        path = request.url.path
        lookup = "/api/application/servers/external/"
        if request.method == "GET" and path.startswith(lookup):
            external_id = path.removeprefix(lookup)
            for server in self.servers.values():
                if server["external_id"] == external_id:
                    return httpx.Response(200, json={"object": "server", "attributes": server})
            return self._error(404, "NotFoundHttpException", "The requested resource could not be found.")
        if request.method == "POST" and path == "/api/application/servers":
            return self._create(request)
        return self._error(404, "NotFoundHttpException", "No such route.")

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.creations.append(body)
        missing = [field for field in self.REQUIRED if field not in body]
        if "allocation" not in body and "deploy" not in body:
            missing.append("allocation")
        if missing:
            return self._error(422, "ValidationException", f"missing {', '.join(missing)}")
        if any(server["external_id"] == body.get("external_id") for server in self.servers.values()):
            return self._error(422, "ValidationException", "The external id has already been taken.")
        server_id = next(self._ids)
        attributes = {
            "id": server_id,
            "external_id": body.get("external_id"),
            "uuid": f"00000000-0000-4000-8000-{server_id:012d}",
            "identifier": f"{server_id:08x}",
            "name": body["name"],
            "user": body["user"],
            "egg": body["egg"],
            "limits": body["limits"],
            "feature_limits": body["feature_limits"],
            "container": {
                "startup_command": body["startup"],
                "image": body["docker_image"],
                "environment": body["environment"],
            },
        }
        self.servers[server_id] = attributes
        if self.timeout_after_create:
            self.timeout_after_create = False
            raise httpx.ReadTimeout("timed out reading the panel's answer", request=request)
        return httpx.Response(201, json={"object": "server", "attributes": attributes})


def fake_http(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))
