"""`paycore tenants …`."""

from __future__ import annotations

from typing import Annotated

import typer

from paycore.cli.common import (
    JsonOption,
    cli_actor,
    console,
    database_for,
    print_json,
    print_rows,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.platform.service import TenantView, list_tenants
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


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(min=1, max=100)] = 100,
    as_json: JsonOption = False,
) -> None:
    """The newest tenants, with their standing: status, plan and subscription."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[TenantView]:
        async with database_for(settings) as database, database.session(write=False) as session:
            views, _ = await list_tenants(session, limit=limit, cursor=None)
            return views

    rows = [
        {
            "id": view.tenant.id,
            "slug": view.tenant.slug,
            "name": view.tenant.name,
            "status": view.tenant.status.value,
            "plan": view.plan.code if view.plan else None,
            "subscription": view.subscription.status.value if view.subscription else None,
            "created": view.tenant.created_at.isoformat(),
        }
        for view in run_async(work)
    ]
    print_rows(rows, as_json=as_json)
