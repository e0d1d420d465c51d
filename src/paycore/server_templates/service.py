"""Server templates (the operator's) and the check of a product that provisions on the operator's
panel (the tenant's). Services take a session and never commit; every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from paycore.fulfillment.provisioners.base import ProvisionerName
from paycore.server_templates.binding import VariableRefused, server_spec
from paycore.server_templates.models import ServerTemplate
from paycore.server_templates.schemas import ServerTemplateBody, ServerTemplateIn
from paycore.tenancy.standing import load_standing

FEATURE_PREFIX = "server_template:"
# What a product's config may hold when it provisions on the operator's panel; nothing else.
PRODUCT_CONFIG_FIELDS = frozenset({"provisioner", "template", "variables"})
_PARAM = "fulfillment.config"


def template_feature(code: str) -> str:
    """The plan feature that lets a tenant sell servers of this template."""
    return f"{FEATURE_PREFIX}{code}"


def plan_allows(features: tuple[str, ...] | list[str], code: str) -> bool:
    return template_feature(code) in features


async def create_template(session: AsyncSession, data: ServerTemplateIn, *, actor: Actor) -> ServerTemplate:
    template = ServerTemplate(code=data.code, **_stored(data))
    try:
        async with session.begin_nested():
            session.add(template)
    except IntegrityError:
        raise Conflict(
            f"A server template '{data.code}' already exists.", code="server_template_exists", param="code"
        ) from None
    record_audit(
        session,
        actor=actor,
        action="server_template.created",
        entity_type="server_template",
        entity_id=template.id,
        tenant_id=None,
        after={"code": template.code, **_stored(data)},
    )
    return template


async def replace_template(
    session: AsyncSession, code: str, data: ServerTemplateBody, *, actor: Actor
) -> ServerTemplate:
    """New spec and bounds for every product on this template, from its next provisioning on.
    Products whose variables the new bounds refuse are not provisioned (needs attention)."""
    template = await get_template(session, code, for_update=True)
    before = {"name": template.name, "spec": template.spec, "variables": template.variables}
    for field, value in _stored(data).items():
        setattr(template, field, value)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="server_template.replaced",
        entity_type="server_template",
        entity_id=template.id,
        tenant_id=None,
        before=before,
        after=_stored(data),
    )
    return template


def _stored(data: ServerTemplateBody) -> dict[str, Any]:
    return {
        "name": data.name,
        "spec": data.spec.model_dump(mode="json", exclude_none=True),
        "variables": {
            name: variable.model_dump(mode="json", exclude_none=True)
            for name, variable in data.variables.items()
        },
    }


async def get_template(session: AsyncSession, code: str, *, for_update: bool = False) -> ServerTemplate:
    statement = select(ServerTemplate).where(ServerTemplate.code == code)
    if for_update:
        statement = statement.with_for_update()
    template = await session.scalar(statement)
    if template is None:
        raise NotFound(f"No server template '{code}'.", code="server_template_not_found", param="code")
    return template


async def list_templates(session: AsyncSession) -> list[ServerTemplate]:
    return list(await session.scalars(select(ServerTemplate).order_by(ServerTemplate.code)))


@dataclass(frozen=True, slots=True)
class BoundServer:
    """What a product's config makes of its template: the spec the panel is to receive."""

    template: ServerTemplate
    spec: dict[str, Any]


async def bind_product_server(
    session: AsyncSession, *, tenant_id: str, config: dict[str, Any]
) -> BoundServer:
    """Check a product config that provisions on the operator's panel: only a template code and
    that template's bounded variables, a template the tenant's plan names. Raises the 4xx that
    names the refused field; used when a product is written and again before provisioning."""
    unknown = sorted(set(config) - PRODUCT_CONFIG_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"A {ProvisionerName.PTERODACTYL} product takes a server template and its variables, not "
            f"{unknown[0]!r}: the server itself is defined by the operator's template.",
            code="field_not_allowed",
            param=f"{_PARAM}.{unknown[0]}",
        )
    code = config.get("template")
    if not isinstance(code, str) or not code:
        raise ValidationFailed("Name the server template to provision.", param=f"{_PARAM}.template")
    template = await session.scalar(select(ServerTemplate).where(ServerTemplate.code == code))
    standing = await load_standing(session, tenant_id)
    if template is None or not plan_allows(standing.features, code):
        # One answer for "no such template" and "not yours to use": template codes are the
        # operator's, and a tenant learns only the ones its plan grants.
        raise PermissionDenied(
            f"The plan does not include server template '{code}'.",
            code="feature_not_in_plan",
            param=f"{_PARAM}.template",
        )
    try:
        spec = server_spec(template.spec, template.variables, config.get("variables", {}))
    except VariableRefused as exc:
        param = f"{_PARAM}.variables" + (f".{exc.name}" if exc.name else "")
        raise ValidationFailed(str(exc), code="variable_out_of_bounds", param=param) from None
    return BoundServer(template=template, spec=spec)


async def check_product_fulfillment(
    session: AsyncSession, *, tenant_id: str, fulfillment: dict[str, Any] | None
) -> None:
    """Refuse, before anything is written, a product whose provisioning the tenant may not ask for."""
    if not fulfillment or fulfillment.get("type") != "provision":
        return
    config = fulfillment.get("config") or {}
    name = config.get("provisioner", ProvisionerName.HTTP)
    if name not in set(ProvisionerName):
        raise ValidationFailed(
            f"Unknown provisioner {name!r}; choose one of {', '.join(ProvisionerName)}.",
            code="unknown_provisioner",
            param=f"{_PARAM}.provisioner",
        )
    if name == ProvisionerName.PTERODACTYL:
        await bind_product_server(session, tenant_id=tenant_id, config=config)
