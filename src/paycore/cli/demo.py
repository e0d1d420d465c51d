"""`paycore demo`: a sale end to end on the sandbox; `paycore demo setup`: the demo tenant, the
test-mode keys and the console owner that `make run` starts with.

Keys and passwords are stored hashed, so to show them again on every start the demo keeps their
plaintext in a local file (mode 0600). Only test-mode keys, only outside production; the console
password is random, never a fixed one a stranger could guess on a shared network.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.admin.service import set_password
from paycore.auth.models import KeyKind, KeyMode
from paycore.auth.passwords import verify_password
from paycore.auth.service import MERCHANT_SCOPES, authenticate_api_key, create_api_key, create_owner
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
from paycore.serving import following_the_bound_address
from paycore.tenancy.models import Tenant
from paycore.tenancy.service import create_tenant

app = typer.Typer(help="The local demo: a sale end to end on the sandbox (`paycore demo`).")

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.test"
MERCHANT_SCOPES_WITH_OPS = [scope.value for scope in MERCHANT_SCOPES]
DEFAULT_KEYS_FILE = Path("var/demo-keys.json")
# What the keys file holds: the two API keys, and the console owner's sign-in.
SAVED_FIELDS = ("secret", "publishable", "console_email", "console_password")


def _read_saved(path: Path) -> dict[str, str]:
    """What an earlier run kept; empty (or partial) when the file is missing or was edited."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: data[name] for name in SAVED_FIELDS if isinstance(data.get(name), str)}


def _write_saved(path: Path, saved: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file that was already there keeps its mode otherwise
    with os.fdopen(descriptor, "w") as handle:
        json.dump(saved, handle, indent=2)


async def _saved_keys_work(session: AsyncSession, saved: dict[str, str]) -> bool:
    if "secret" not in saved or "publishable" not in saved:
        return False
    try:
        for kind in ("secret", "publishable"):
            await authenticate_api_key(session, saved[kind])
    except AuthenticationFailed:
        return False  # revoked, or from another database: issue fresh ones
    return True


async def _new_keys(session: AsyncSession, tenant: Tenant) -> dict[str, str]:
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
    return keys


async def _console_sign_in(session: AsyncSession, tenant: Tenant, saved: dict[str, str]) -> dict[str, str]:
    """The demo owner's sign-in that works: the saved password while it still does, otherwise a
    new random one (the owner is created on the first run)."""
    actor = cli_actor()
    password = saved.get("console_password") or secrets.token_urlsafe(18)
    user, created = await create_owner(
        session, tenant=tenant, email=DEMO_OWNER_EMAIL, password=password, actor=actor
    )
    if not created and not verify_password(user.password_hash, password):
        password = secrets.token_urlsafe(18)  # set elsewhere, or the file was lost: start over
        await set_password(session, tenant=tenant, email=DEMO_OWNER_EMAIL, password=password, actor=actor)
    return {"console_email": DEMO_OWNER_EMAIL, "console_password": password}


async def ensure_demo_tenant(settings: Settings, keys_file: Path) -> tuple[dict[str, str], bool]:
    """The demo tenant, working test keys and the console owner's sign-in (see SAVED_FIELDS);
    returns them and whether the tenant was just created."""
    saved = _read_saved(keys_file)
    async with write_session(settings) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
        created = tenant is None
        if tenant is None:
            tenant = await create_tenant(session, slug=DEMO_SLUG, name="Demo Shop", actor=cli_actor())
        if created or not await _saved_keys_work(session, saved):
            keys = await _new_keys(session, tenant)
        else:
            keys = {"secret": saved["secret"], "publishable": saved["publishable"]}
        access = keys | await _console_sign_in(session, tenant, saved)
    if access != saved:
        _write_saved(keys_file, access)
    return access, created


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

    access, created = run_async(work)
    # Where `paycore run` will listen with these same settings (PAYCORE_HTTP_HOST/PORT).
    base = following_the_bound_address(settings, settings.http_host, settings.http_port).public_url
    lines = [
        f"Demo tenant {DEMO_SLUG} {'created' if created else 'ready'} (test mode):",
        f"  secret key       {access['secret']}",
        f"  publishable key  {access['publishable']}",
        f"  console          {base}/admin/login",
        f"    shop           {DEMO_SLUG}",
        f"    email          {access['console_email']}",
        f"    password       {access['console_password']}",
        f"  (kept in {keys_file}, readable by you alone; try: "
        f"curl -H 'Authorization: Bearer {access['secret']}' {base}/v1/tenant)",
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
