"""`/v1/platform/server-templates`: only a platform key writes them, and a template is checked whole
when it is written — an unbounded variable or a field the panel must not get never gets stored."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from paycore.audit.service import Actor
from paycore.db import Database
from paycore.platform.service import create_platform_key
from tests.flows.helpers import open_shop
from tests.fulfillment.panel_harness import TEMPLATE, TEMPLATE_SPEC

URL = "/v1/platform/server-templates"


@pytest.fixture
async def platform(db: Database) -> dict[str, str]:
    async with db.session() as session:
        created = await create_platform_key(session, name="ops", actor=Actor(name="test:platform"))
    return {"Authorization": f"Bearer {created.plaintext}"}


def template(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(TEMPLATE)
    body.update(changes)
    return body


class TestWritingTemplates:
    async def test_create_read_list_and_replace(
        self, client: httpx.AsyncClient, platform: dict[str, str]
    ) -> None:
        created = await client.post(URL, json=TEMPLATE, headers=platform)
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["object"], body["code"], body["id"][:5]) == ("server_template", "mc-small", "stpl_")
        assert body["spec"] == {**TEMPLATE_SPEC, "skip_scripts": False, "start_on_completion": True}
        assert body["variables"]["memory"] == {
            "target": "limits",
            "type": "integer",
            "min": 1024,
            "max": 4096,
        }

        assert (await client.get(f"{URL}/mc-small", headers=platform)).json()["id"] == body["id"]
        listed = await client.get(URL, headers=platform)
        assert [item["code"] for item in listed.json()["data"]] == ["mc-small"]

        replaced = await client.put(
            f"{URL}/mc-small",
            json={
                "name": "Minecraft, bigger",
                "spec": {**TEMPLATE_SPEC, "docker_image": "ghcr.io/pterodactyl/yolks:java_21"},
                "variables": {},
            },
            headers=platform,
        )
        assert replaced.status_code == 200, replaced.text
        assert (
            replaced.json()["name"],
            replaced.json()["spec"]["docker_image"],
            replaced.json()["variables"],
        ) == (
            "Minecraft, bigger",
            "ghcr.io/pterodactyl/yolks:java_21",
            {},
        )

        duplicate = await client.post(URL, json=TEMPLATE, headers=platform)
        assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "server_template_exists")
        missing = await client.get(f"{URL}/nope", headers=platform)
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "server_template_not_found")

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            (template(variables={"MAX_PLAYERS": {"type": "integer", "min": 1}}), "needs min and max"),
            (template(variables={"STARTUP_FLAGS": {"type": "string"}}), "needs its allowed values"),
            (
                template(variables={"docker_image": {"type": "string", "allowed": ["x"]}}),
                "environment variable name",
            ),
            (
                template(
                    variables={"memory": {"target": "limits", "type": "integer", "min": 0, "max": 65536}}
                ),
                "at least 1 MB",
            ),
            (
                template(
                    variables={"memory": {"target": "limits", "type": "integer", "min": 4096, "max": 8192}}
                ),
                "outside the variable's bounds",
            ),
            (template(spec={**TEMPLATE_SPEC, "limits": {**TEMPLATE_SPEC["limits"], "memory": 0}}), "memory"),
            (template(spec={**TEMPLATE_SPEC, "external_id": "x"}), "external_id"),
            (
                template(spec={**TEMPLATE_SPEC, "allocation": {"default": 1}}),
                "exactly one of deploy or allocation",
            ),
            (template(code="Mc Small"), "code"),
        ],
    )
    async def test_a_template_that_is_not_fully_bounded_is_refused(
        self, client: httpx.AsyncClient, platform: dict[str, str], body: dict[str, Any], fragment: str
    ) -> None:
        response = await client.post(URL, json=body, headers=platform)
        assert response.status_code == 422, response.text
        assert fragment in response.json()["error"]["message"]
        assert (await client.get(URL, headers=platform)).json()["data"] == []


class TestWhoMayWrite:
    async def test_a_tenant_key_cannot_touch_templates(self, client: httpx.AsyncClient, db: Database) -> None:
        shop = await open_shop(db)
        for response in (
            await client.post(URL, json=TEMPLATE, headers=shop.secret),
            await client.get(URL, headers=shop.secret),
            await client.put(f"{URL}/mc-small", json=template(), headers=shop.secret),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "insufficient_scope"

    async def test_anonymous_callers_are_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post(URL, json=TEMPLATE)
        assert response.status_code == 401, response.text


async def test_plans_carry_the_server_quotas(client: httpx.AsyncClient, platform: dict[str, str]) -> None:
    created = await client.post(
        "/v1/platform/plans",
        json={
            "code": "games",
            "name": "Games",
            "features": ["server_template:mc-small"],
            "max_servers": 3,
            "max_server_memory_mb": 12288,
        },
        headers=platform,
    )
    assert created.status_code == 201, created.text
    assert (
        created.json()["features"],
        created.json()["max_servers"],
        created.json()["max_server_memory_mb"],
    ) == (
        ["server_template:mc-small"],
        3,
        12288,
    )
