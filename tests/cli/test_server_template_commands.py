"""`paycore server-templates …`: the operator writes, reads and replaces its server templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.fulfillment.panel_harness import TEMPLATE

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


def test_templates_are_created_listed_shown_and_replaced(cli: Cli, tmp_path: Path) -> None:
    cli("db", "migrate")
    body = {key: value for key, value in TEMPLATE.items() if key != "code"}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(body))
    created = cli("server-templates", "create", "mc-small", str(path))
    assert "server_template:mc-small" in created  # how a plan grants it

    listed = cli("server-templates", "list", env={"COLUMNS": "250"})
    assert "mc-small" in listed
    assert "ghcr.io/pterodactyl/yolks:java_17" in listed
    shown = json.loads(cli("server-templates", "show", "mc-small").strip().splitlines()[-1])
    assert (shown["spec"], shown["variables"]["memory"]["max"]) == (
        {**body["spec"], "skip_scripts": False, "start_on_completion": True},
        4096,
    )

    path.write_text(
        json.dumps({**body, "spec": {**body["spec"], "docker_image": "ghcr.io/pterodactyl/yolks:java_21"}})
    )
    assert "Replaced" in cli("server-templates", "replace", "mc-small", str(path))
    shown = json.loads(cli("server-templates", "show", "mc-small").strip().splitlines()[-1])
    assert shown["spec"]["docker_image"] == "ghcr.io/pterodactyl/yolks:java_21"

    assert "already exists" in cli("server-templates", "create", "mc-small", str(path), expect=1)
    assert "No server template" in cli("server-templates", "show", "nope", expect=1)


def test_an_unbounded_variable_is_refused(cli: Cli, tmp_path: Path) -> None:
    cli("db", "migrate")
    body = {key: value for key, value in TEMPLATE.items() if key != "code"}
    body["variables"] = {"MAX_PLAYERS": {"type": "integer", "min": 1}}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(body))
    refused = cli("server-templates", "create", "mc-small", str(path), expect=1)
    assert "needs min and max" in refused
    assert "mc-small" not in cli("server-templates", "list", env={"COLUMNS": "250"})
