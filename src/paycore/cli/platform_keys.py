"""`paycore platform-keys …`: the platform operator's credentials (scope `platform`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from paycore.audit.service import record_audit
from paycore.cli.common import (
    cli_actor,
    console,
    database_for,
    errors,
    fail,
    print_json,
    print_table,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.clock import utcnow
from paycore.platform.models import PlatformKey
from paycore.platform.service import create_platform_key

app = typer.Typer(help="Platform keys: the operator's access to /v1/platform.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a platform key and print it once; only its hash is stored."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> tuple[str, str, str]:
        async with write_session(settings) as session:
            created = await create_platform_key(session, name=name, actor=cli_actor())
            return created.key.id, created.plaintext, created.key.prefix

    key_id, plaintext, prefix = run_async(work)
    if as_json:
        print_json({"id": key_id, "key": plaintext, "prefix": prefix, "scopes": ["platform"]})
        return
    console.print(f"Created platform key {key_id} (scope: platform).")
    console.print(plaintext, highlight=False, soft_wrap=True)
    errors.print("[yellow]Store this key now: it is not shown again.[/]")


@app.command("list")
def list_keys() -> None:
    """Platform keys, by prefix and last four characters."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[PlatformKey]:
        async with database_for(settings) as database, database.session(write=False) as session:
            return list(await session.scalars(select(PlatformKey).order_by(PlatformKey.created_at)))

    table = Table("id", "key", "name", "status")
    for key in run_async(work):
        status = "revoked" if key.revoked_at else "active"
        table.add_row(key.id, f"{key.prefix}…{key.last4}", key.name or "", status)
    print_table(table)


@app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a platform key at once."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> bool:
        async with write_session(settings) as session:
            key = await session.get(PlatformKey, key_id, with_for_update=True)
            if key is None:
                return False
            key.revoked_at = key.revoked_at or utcnow()
            record_audit(
                session,
                actor=cli_actor(),
                action="platform_key.revoked",
                entity_type="platform_key",
                entity_id=key.id,
                tenant_id=None,
            )
            return True

    if not run_async(work):
        fail(f"no platform key {key_id}")
    console.print(f"Revoked {key_id}.")
