"""`paycore tenants …`."""

from __future__ import annotations

from typing import Annotated

import typer

from paycore.cli.common import (
    cli_actor,
    console,
    print_json,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.tenancy.service import create_tenant

app = typer.Typer(help="Tenants (merchants).", no_args_is_help=True)


@app.command("create")
def create(
    slug: Annotated[str, typer.Option(help="URL-safe name, used in webhook URLs.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a tenant on the default (unlimited) plan."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> tuple[str, str]:
        async with write_session(settings) as session:
            tenant = await create_tenant(session, slug=slug, name=name, actor=cli_actor())
            return tenant.id, tenant.slug

    tenant_id, tenant_slug = run_async(work)
    if as_json:
        print_json({"id": tenant_id, "slug": tenant_slug})
    else:
        console.print(f"Created tenant [bold]{tenant_slug}[/] ({tenant_id}).")
