"""`/v1/platform/server-templates`: the operator's server templates (platform keys only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from paycore.dependencies import ReadSessionDep, WriteSessionDep
from paycore.platform.dependencies import PlatformDep
from paycore.schemas import ListOut
from paycore.server_templates import service
from paycore.server_templates.models import ServerTemplate
from paycore.server_templates.schemas import ServerTemplateBody, ServerTemplateIn, ServerTemplateOut

router = APIRouter(prefix="/v1/platform/server-templates", tags=["platform"])


def template_out(template: ServerTemplate) -> ServerTemplateOut:
    return ServerTemplateOut(
        id=template.id,
        code=template.code,
        name=template.name,
        spec=template.spec,
        variables=template.variables,
        created=template.created_at,
        updated=template.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a server template")
async def create_template(
    body: ServerTemplateIn, actor: PlatformDep, session: WriteSessionDep
) -> ServerTemplateOut:
    """A game-server template: the spec the operator's panel receives and the variables a merchant's
    product may set within bounds. Products provision only through the operator's templates. Needs
    the platform operator's key (`plat_…`)."""
    return template_out(await service.create_template(session, body, actor=actor))


@router.get("", summary="Every server template")
async def list_templates(_actor: PlatformDep, session: ReadSessionDep) -> ListOut[ServerTemplateOut]:
    """Every server template. Needs the platform operator's key (`plat_…`)."""
    templates = await service.list_templates(session)
    return ListOut(data=[template_out(template) for template in templates], has_more=False, next_cursor=None)


@router.get("/{code}", summary="One server template")
async def read_template(code: str, _actor: PlatformDep, session: ReadSessionDep) -> ServerTemplateOut:
    """One server template by code. Needs the platform operator's key (`plat_…`)."""
    return template_out(await service.get_template(session, code))


@router.put("/{code}", summary="Replace a server template's spec and variables")
async def replace_template(
    code: str, body: ServerTemplateBody, actor: PlatformDep, session: WriteSessionDep
) -> ServerTemplateOut:
    """Replaces a template's name, spec and variables, for servers provisioned from now on. Needs the platform
    operator's key (`plat_…`)."""
    return template_out(await service.replace_template(session, code, body, actor=actor))
