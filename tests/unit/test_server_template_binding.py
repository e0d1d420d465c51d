"""A product's variables against its template's bounds, and the one spec they make: pure rules,
shared by the product API and the worker."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.server_templates.binding import VariableRefused, bind_variables, server_memory, server_spec

DEFINITIONS: dict[str, Any] = {
    "memory": {"target": "limits", "type": "integer", "min": 1024, "max": 4096},
    "MAX_PLAYERS": {"type": "integer", "min": 1, "max": 50},
    "VERSION": {"type": "string", "allowed": ["1.20.4", "1.21"]},
    "PVP": {"type": "boolean"},
}
SPEC: dict[str, Any] = {
    "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
    "environment": {"MAX_PLAYERS": 20},
    "limits": {"memory": 2048, "disk": 10240},
}


class TestBounds:
    @pytest.mark.parametrize(
        ("values", "name"),
        [
            ({"memory": 1023}, "memory"),
            ({"memory": 4097}, "memory"),
            ({"memory": True}, "memory"),  # a bool is an int to Python, never to a bound
            ({"memory": 2048.0}, "memory"),
            ({"VERSION": "latest"}, "VERSION"),
            ({"VERSION": 1}, "VERSION"),
            ({"PVP": "yes"}, "PVP"),
            ({"docker_image": "ghcr.io/mallory/miner"}, "docker_image"),
            ({"oom_disabled": True}, "oom_disabled"),
        ],
    )
    def test_a_value_outside_its_definition_is_refused_by_name(
        self, values: dict[str, Any], name: str
    ) -> None:
        with pytest.raises(VariableRefused) as refused:
            bind_variables(DEFINITIONS, values)
        assert refused.value.name == name

    def test_variables_must_be_an_object(self) -> None:
        with pytest.raises(VariableRefused) as refused:
            bind_variables(DEFINITIONS, ["memory", 2048])
        assert refused.value.name is None

    def test_values_at_the_bounds_are_taken(self) -> None:
        values = {"memory": 4096, "MAX_PLAYERS": 1, "VERSION": "1.21", "PVP": False}
        assert bind_variables(DEFINITIONS, values) == values


class TestSpec:
    def test_variables_land_where_their_target_says_and_nothing_else_changes(self) -> None:
        spec = server_spec(SPEC, DEFINITIONS, {"memory": 4096, "MAX_PLAYERS": 30, "PVP": True})
        assert spec == {
            "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
            "environment": {"MAX_PLAYERS": 30, "PVP": True},
            "limits": {"memory": 4096, "disk": 10240},
        }
        assert server_memory(spec) == 4096
        assert SPEC["limits"]["memory"] == 2048  # the template itself is untouched

    def test_no_variables_is_the_template_as_it_is(self) -> None:
        assert server_spec(SPEC, DEFINITIONS, {}) == SPEC
