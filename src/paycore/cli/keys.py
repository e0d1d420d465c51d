"""`paycore keys …`: API keys, shown in full once at creation."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from paycore.auth.models import ApiKey, KeyKind, KeyMode
from paycore.auth.service import create_api_key, list_api_keys, revoke_api_key
from paycore.cli.common import (
    JsonOption,
    cli_actor,
    console,
    database_for,
    errors,
    print_json,
    print_rows,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.clock import utcnow
from paycore.invalidation import CacheKind, publish_from_outside
from paycore.tenancy.service import get_tenant_by_slug

app = typer.Typer(help="API keys.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant slug.")]


def _status(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= utcnow():
        return "expired"
    return "active"


@app.command("create")
def create(
    tenant: TenantOption,
    mode: Annotated[KeyMode, typer.Option(help="test or live.")],
    kind: Annotated[KeyKind, typer.Option(help="secret (merchant API) or publishable (storefront).")],
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: read,write,refunds,ops (secret keys; default read,write,refunds)."
        ),
    ] = "",
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Expire the key after this many days.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    settings = settings_or_exit(quiet_logs=True)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None

    async def work() -> tuple[str, str, str, list[str]]:
        async with write_session(settings) as session:
            owner = await get_tenant_by_slug(session, tenant)
            created = await create_api_key(
                session,
                tenant=owner,
                mode=mode,
                kind=kind,
                scopes=scopes.split(",") if scopes else (),
                name=name,
                expires_at=expires_at,
                actor=cli_actor(),
            )
            return (
                created.key.id,
                created.plaintext,
                created.key.prefix,
                created.key.scopes,
            )

    key_id, plaintext, prefix, key_scopes = run_async(work)
    if as_json:
        print_json({"id": key_id, "key": plaintext, "prefix": prefix, "scopes": key_scopes})
        return
    console.print(
        f"Created {mode.value} {kind.value} key {key_id} (scopes: {', '.join(key_scopes) or 'storefront'})."
    )
    console.print(plaintext, highlight=False, soft_wrap=True)
    errors.print("[yellow]Store this key now: it is not shown again.[/]")


@app.command("list")
def list_keys(
    tenant: TenantOption,
    as_json: JsonOption = False,
) -> None:
    """List a tenant's keys (prefix and last four characters only)."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[ApiKey]:
        async with (
            database_for(settings) as database,
            database.session(write=False) as session,
        ):
            owner = await get_tenant_by_slug(session, tenant)
            return await list_api_keys(session, tenant_id=owner.id)

    rows = [
        {
            "id": key.id,
            "redacted": key.redacted,
            "mode": key.mode.value,
            "kind": key.kind.value,
            "scopes": key.scopes,
            "status": _status(key),
            "created": key.created_at.isoformat(),
            "last_used": key.last_used_at.isoformat() if key.last_used_at else None,
            "expires": key.expires_at.isoformat() if key.expires_at else None,
        }
        for key in run_async(work)
    ]
    print_rows(rows, as_json=as_json)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
    tenant: TenantOption,
) -> None:
    """Revoke a key at once. Revoking a revoked key changes nothing."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> bool:
        async with database_for(settings) as database:
            async with database.session(write=True) as session:
                owner = await get_tenant_by_slug(session, tenant)
                _, changed = await revoke_api_key(
                    session, tenant_id=owner.id, key_id=key_id, actor=cli_actor()
                )
            # After the commit: every server forgets the key now, not when its cache expires.
            await publish_from_outside(settings, database, CacheKind.API_KEY, key_id)
            return changed

    changed = run_async(work)
    console.print(f"Revoked {key_id}." if changed else f"{key_id} was already revoked; nothing changed.")
