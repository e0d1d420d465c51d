"""What an operator may put in a server template. Every field the panel will receive is typed and
bounded here, so a template is checked once, when the operator writes it."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from paycore.schemas import StrictInput

TEMPLATE_CODE = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ENVIRONMENT_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
# The `limits` of a Pterodactyl server a product may be allowed to choose (MB, MB, MB, weight, %).
LIMIT_NAMES = frozenset({"memory", "swap", "disk", "io", "cpu"})
_MAX_MB = 1024 * 1024  # 1 TB: a bound on typing mistakes, not a policy

EnvironmentValue = str | int | bool


class ServerLimits(StrictInput):
    # At least 1 MB: Pterodactyl reads 0 as "unlimited", which no memory quota could count.
    memory: int = Field(strict=True, ge=1, le=_MAX_MB)
    swap: int = Field(default=0, strict=True, ge=-1, le=_MAX_MB)
    disk: int = Field(strict=True, ge=0, le=16 * _MAX_MB)
    io: int = Field(default=500, strict=True, ge=10, le=1000)
    cpu: int = Field(strict=True, ge=0, le=100 * 256)
    threads: str | None = Field(default=None, max_length=100, pattern=r"^[0-9,-]+$")


class FeatureLimits(StrictInput):
    databases: int = Field(strict=True, ge=0, le=1000)
    allocations: int = Field(strict=True, ge=0, le=1000)
    backups: int = Field(strict=True, ge=0, le=1000)


class Deploy(StrictInput):
    locations: list[int] = Field(min_length=1, max_length=100)
    dedicated_ip: bool = False
    port_range: list[str] = Field(default_factory=list, max_length=100)


class Allocation(StrictInput):
    default: int = Field(strict=True, ge=1)
    additional: list[int] = Field(default_factory=list, max_length=100)


class ServerSpec(StrictInput):
    """The creation fields of Pterodactyl's `POST /api/application/servers`, as the operator sets
    them (paycore adds `name` and `external_id`)."""

    user: int = Field(strict=True, ge=1, description="The panel user who owns the servers.")
    egg: int = Field(strict=True, ge=1)
    docker_image: str = Field(min_length=1, max_length=255)
    startup: str = Field(min_length=1, max_length=2000)
    environment: dict[str, EnvironmentValue] = Field(default_factory=dict, max_length=100)
    limits: ServerLimits
    feature_limits: FeatureLimits
    deploy: Deploy | None = None
    allocation: Allocation | None = None
    oom_disabled: bool | None = None
    skip_scripts: bool = False
    start_on_completion: bool = True

    @field_validator("environment")
    @classmethod
    def _environment_names(cls, value: dict[str, EnvironmentValue]) -> dict[str, EnvironmentValue]:
        for name in value:
            if not ENVIRONMENT_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name (A-Z, 0-9, _)")
        return value

    @model_validator(mode="after")
    def _one_placement(self) -> ServerSpec:
        if (self.deploy is None) == (self.allocation is None):
            raise ValueError("give exactly one of deploy or allocation")
        return self


class VariableType(StrEnum):
    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"


class VariableTarget(StrEnum):
    ENVIRONMENT = "environment"  # an environment variable of the server
    LIMITS = "limits"  # one of the server's resource limits (memory, disk, cpu, swap, io)


class TemplateVariable(StrictInput):
    """What a product may set, and within which bounds. Integers need both bounds; strings need
    the list of allowed values (a free string could reach the startup command)."""

    target: VariableTarget = VariableTarget.ENVIRONMENT
    type: VariableType
    min: int | None = Field(default=None, strict=True)
    max: int | None = Field(default=None, strict=True)
    allowed: list[str] | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _bounded(self) -> TemplateVariable:
        if self.type is VariableType.INTEGER:
            if self.min is None or self.max is None:
                raise ValueError("an integer variable needs min and max")
            if self.min > self.max:
                raise ValueError("min must not be above max")
            if self.allowed is not None:
                raise ValueError("allowed goes with string variables")
        elif self.min is not None or self.max is not None:
            raise ValueError("min and max go with integer variables")
        if self.type is VariableType.STRING and self.allowed is None:
            raise ValueError("a string variable needs its allowed values")
        if self.type is VariableType.BOOLEAN and self.allowed is not None:
            raise ValueError("allowed goes with string variables")
        if self.target is VariableTarget.LIMITS and self.type is not VariableType.INTEGER:
            raise ValueError("a limits variable is an integer")
        if self.allowed is not None and any(len(value) > 200 for value in self.allowed):
            raise ValueError("allowed values are at most 200 characters")
        return self


class ServerTemplateBody(StrictInput):
    name: str = Field(min_length=1, max_length=200)
    spec: ServerSpec
    variables: dict[str, TemplateVariable] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _variables_fit_the_spec(self) -> ServerTemplateBody:
        for name, variable in self.variables.items():
            if variable.target is VariableTarget.LIMITS:
                if name not in LIMIT_NAMES:
                    raise ValueError(
                        f"limits variable {name!r} must be one of {', '.join(sorted(LIMIT_NAMES))}"
                    )
                default = getattr(self.spec.limits, name)
                assert variable.min is not None  # an integer's bounds are checked above
                assert variable.max is not None
                if not variable.min <= default <= variable.max:
                    raise ValueError(f"the spec's limits.{name} ({default}) is outside the variable's bounds")
                if name == "memory" and variable.min < 1:
                    raise ValueError("memory stays at least 1 MB (0 is unlimited on the panel)")
            elif not ENVIRONMENT_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name (A-Z, 0-9, _)")
        return self


class ServerTemplateIn(ServerTemplateBody):
    code: str = Field(min_length=1, max_length=63, pattern=TEMPLATE_CODE)


class ServerTemplateOut(BaseModel):
    id: str
    object: Literal["server_template"] = "server_template"
    code: str
    name: str
    spec: dict[str, Any] = Field(description="The spec as created (`ServerSpec`): what the panel receives.")
    variables: dict[str, Any] = Field(
        description="The variables a product may set, by name, as created (`TemplateVariable`)."
    )
    created: datetime
    updated: datetime
