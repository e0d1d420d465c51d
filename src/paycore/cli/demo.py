"""`paycore demo`: a sale end to end on the sandbox; `paycore demo setup`: the demo tenant and the
test-mode keys that `make run` starts with.

Keys are stored hashed, so to show them again on every start the demo keeps their plaintext in a
local file (mode 0600). Only test-mode keys, only outside production.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from paycore.auth.models import KeyKind, KeyMode
from paycore.auth.service import MERCHANT_SCOPES, authenticate_api_key, create_api_key
from paycore.cli.common import (
    cli_actor,
    console,
    fail,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.cli.demo_walkthrough import run_walkthrough
from paycore.config import Settings, normalize_database_url
from paycore.errors import AuthenticationFailed
from paycore.tenancy.models import Tenant
from paycore.tenancy.service import create_tenant

app = typer.Typer(help="The local demo: a sale end to end on the sandbox (`paycore demo`).")

DEMO_SLUG = "demo"
MERCHANT_SCOPES_WITH_OPS = [scope.value for scope in MERCHANT_SCOPES]
DEFAULT_KEYS_FILE = Path("var/demo-keys.json")


def _read_keys(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (
        isinstance(data, dict)
        and isinstance(data.get("secret"), str)
        and isinstance(data.get("publishable"), str)
    ):
        return {"secret": data["secret"], "publishable": data["publishable"]}
    return None


def _write_keys(path: Path, keys: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle, indent=2)


async def ensure_demo_tenant(settings: Settings, keys_file: Path) -> tuple[dict[str, str], bool]:
    """The demo tenant and working test keys; returns (keys, whether they were just created)."""
    saved = _read_keys(keys_file)
    async with write_session(settings) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
        if tenant is not None and saved is not None:
            try:
                for plaintext in saved.values():
                    await authenticate_api_key(session, plaintext)
                return saved, False
            except AuthenticationFailed:
                pass  # revoked, or from another database: issue fresh ones
        if tenant is None:
            tenant = await create_tenant(session, slug=DEMO_SLUG, name="Demo Shop", actor=cli_actor())
        keys = {}
        for kind in (KeyKind.SECRET, KeyKind.PUBLISHABLE):
            created = await create_api_key(
                session,
                tenant=tenant,
                mode=KeyMode.TEST,
                kind=kind,
                name="demo",
                # The demo's secret key may read the ops summary too: a newcomer should see it.
                scopes=MERCHANT_SCOPES_WITH_OPS if kind is KeyKind.SECRET else (),
                actor=cli_actor(),
            )
            keys[kind.value] = created.plaintext
    _write_keys(keys_file, keys)
    return keys, True


KeysFileOption = Annotated[Path, typer.Option(help="Where the demo keys are kept between runs.")]


@app.callback(invoke_without_command=True)
def walkthrough(
    ctx: typer.Context,
    keys_file: KeysFileOption = DEFAULT_KEYS_FILE,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Sell in this database and keep what the demo made (default: a throwaway SQLite "
            "database, so `make run`'s data is left alone)."
        ),
    ] = None,
) -> None:
    """Sell one item end to end on the sandbox, with its webhook sent 3 times and out of order,
    and show that every effect happened once. (`paycore demo setup` only prepares the tenant.)"""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit(quiet_logs=True)
    if settings.is_production:
        fail("the demo is for development only (PAYCORE_ENV=production)")
    if database_url is not None:
        kept = settings.model_copy(update={"database_url": normalize_database_url(database_url)})
        run_async(lambda: run_walkthrough(kept, keys_file, console=console, ensure_tenant=ensure_demo_tenant))
        return
    with tempfile.TemporaryDirectory(prefix="paycore-demo-") as scratch:
        throwaway = settings.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{Path(scratch) / 'demo.db'}"}
        )
        console.print("(a throwaway database: nothing is kept; --database-url URL keeps it)")
        run_async(
            lambda: run_walkthrough(
                throwaway, Path(scratch) / "demo-keys.json", console=console, ensure_tenant=ensure_demo_tenant
            )
        )


@app.command("setup")
def setup(keys_file: KeysFileOption = DEFAULT_KEYS_FILE) -> None:
    """Create the demo tenant and its test keys on first run; print them on every run."""
    settings = settings_or_exit(quiet_logs=True)
    if settings.is_production:
        fail("the demo tenant is for development only (PAYCORE_ENV=production)")

    async def work() -> tuple[dict[str, str], bool]:
        return await ensure_demo_tenant(settings, keys_file)

    keys, created = run_async(work)
    console.print(f"Demo tenant [bold]{DEMO_SLUG}[/] {'created' if created else 'ready'} (test mode):")
    console.print(f"  secret key       {keys['secret']}", highlight=False, soft_wrap=True)
    console.print(f"  publishable key  {keys['publishable']}", highlight=False, soft_wrap=True)
    console.print(
        f"  (kept in {keys_file}; try: curl -H 'Authorization: Bearer {keys['secret']}' "
        "http://127.0.0.1:8000/v1/tenant)",
        highlight=False,
        soft_wrap=True,
    )
