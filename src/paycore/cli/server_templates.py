"""`paycore server-templates …`: the operator's server templates (what tenants may sell on its panel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from paycore.cli.common import (
    cli_actor,
    console,
    database_for,
    fail,
    print_json,
    print_table,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.server_templates import service
from paycore.server_templates.endpoints import template_out
from paycore.server_templates.schemas import ServerTemplateBody, ServerTemplateIn

app = typer.Typer(
    help="Server templates: the only servers tenants' products may create on the Pterodactyl panel.",
    no_args_is_help=True,
)

FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="A JSON file: name, spec and variables.")
]


def _read(path: Path, model: type[ServerTemplateBody], **extra: Any) -> Any:
    try:
        return model.model_validate({**json.loads(path.read_text()), **extra})
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            fail(f"{'.'.join(str(part) for part in first['loc']) or 'template'}: {first['msg']}")
        fail(f"{path} is not a JSON object: {exc}")


@app.command("create")
def create(code: str, path: FileArgument) -> None:
    """Create template CODE from a JSON file ({"name", "spec", "variables"})."""
    settings = settings_or_exit(quiet_logs=True)
    data: ServerTemplateIn = _read(path, ServerTemplateIn, code=code)

    async def work() -> dict[str, Any]:
        async with write_session(settings) as session:
            template = await service.create_template(session, data, actor=cli_actor())
            return template_out(template).model_dump(mode="json")

    created = run_async(work)
    console.print(f"Created server template {created['code']} ({created['id']}).")
    console.print(f"Plans grant it with the feature server_template:{created['code']}.", highlight=False)


@app.command("replace")
def replace(code: str, path: FileArgument) -> None:
    """Give template CODE a new name, spec and variables (used from each product's next server on)."""
    settings = settings_or_exit(quiet_logs=True)
    data: ServerTemplateBody = _read(path, ServerTemplateBody)

    async def work() -> None:
        async with write_session(settings) as session:
            await service.replace_template(session, code, data, actor=cli_actor())

    run_async(work)
    console.print(f"Replaced server template {code}.")


@app.command("list")
def list_templates() -> None:
    """Every server template, with its image and base memory."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[dict[str, Any]]:
        async with database_for(settings) as database, database.session(write=False) as session:
            return [template_out(t).model_dump(mode="json") for t in await service.list_templates(session)]

    table = Table("code", "name", "egg", "docker image", "memory MB", "variables")
    for template in run_async(work):
        spec = template["spec"]
        table.add_row(
            template["code"],
            template["name"],
            str(spec["egg"]),
            spec["docker_image"],
            str(spec["limits"]["memory"]),
            ", ".join(sorted(template["variables"])),
        )
    print_table(table)


@app.command("show")
def show(code: str) -> None:
    """Template CODE as one JSON object."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> dict[str, Any]:
        async with database_for(settings) as database, database.session(write=False) as session:
            return template_out(await service.get_template(session, code)).model_dump(mode="json")

    print_json(run_async(work))
