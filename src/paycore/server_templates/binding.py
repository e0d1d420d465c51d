"""A product's variable values, checked against its template's bounds, and the one server spec
they make. Pure: no I/O, so the product API and the worker apply exactly the same rules."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from paycore.server_templates.schemas import VariableTarget, VariableType


class VariableRefused(ValueError):
    """A value the template does not allow; `name` is the variable (None: the whole mapping)."""

    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(message)
        self.name = name


def _check(name: str, definition: Mapping[str, Any], value: object) -> None:
    kind = VariableType(definition["type"])
    if kind is VariableType.INTEGER:
        if not isinstance(value, int) or isinstance(value, bool):
            raise VariableRefused(name, f"{name} must be an integer")
        if not definition["min"] <= value <= definition["max"]:
            raise VariableRefused(name, f"{name} must be between {definition['min']} and {definition['max']}")
    elif kind is VariableType.BOOLEAN:
        if not isinstance(value, bool):
            raise VariableRefused(name, f"{name} must be true or false")
    elif not isinstance(value, str) or value not in definition["allowed"]:
        raise VariableRefused(name, f"{name} must be one of {', '.join(definition['allowed'])}")


def bind_variables(definitions: Mapping[str, Any], values: object) -> dict[str, Any]:
    """The values, each checked against its definition; a name the template lacks is refused."""
    if not isinstance(values, Mapping):
        raise VariableRefused(None, "variables must be an object of name: value")
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is None:
            raise VariableRefused(str(name), f"the template has no variable {name!r}")
        _check(name, definition, value)
    return dict(values)


def server_spec(
    template_spec: Mapping[str, Any], definitions: Mapping[str, Any], values: object
) -> dict[str, Any]:
    """The template's spec with the bound variables set in it, and nothing else."""
    bound = bind_variables(definitions, values)
    spec = copy.deepcopy(dict(template_spec))
    for name, value in bound.items():
        target = VariableTarget(definitions[name].get("target", VariableTarget.ENVIRONMENT))
        if target is VariableTarget.LIMITS:
            spec["limits"][name] = value
        else:
            spec.setdefault("environment", {})[name] = value
    return spec


def server_memory(spec: Mapping[str, Any]) -> int:
    """Megabytes of memory the server takes from the operator's panel."""
    memory: int = spec["limits"]["memory"]
    return memory
