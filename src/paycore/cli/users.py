"""`paycore users …`: console accounts."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from paycore.admin.service import set_password
from paycore.auth.passwords import password_problems
from paycore.auth.service import create_owner
from paycore.cli.common import (
    cli_actor,
    console,
    fail,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.tenancy.service import get_tenant_by_slug

app = typer.Typer(help="Admin console users.", no_args_is_help=True)


def _read_password(password_env: str | None, email: str) -> str:
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            fail(f"the environment variable {password_env} is not set or empty")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = password_problems(password, email=email)
    if problems:
        fail("the password " + "; ".join(problems) + ".")
    return password


@app.command("create-owner")
def create_owner_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug.")],
    email: Annotated[str, typer.Option(help="The owner's email (their sign-in name).")],
    password_env: Annotated[
        str | None,
        typer.Option(help="Read the password from this environment variable instead of a prompt."),
    ] = None,
) -> None:
    """Create the tenant's owner account. Running it again for the same email changes nothing."""
    settings = settings_or_exit(quiet_logs=True)
    password = _read_password(password_env, email)

    async def work() -> tuple[str, bool]:
        async with write_session(settings) as session:
            owner = await get_tenant_by_slug(session, tenant)
            user, created = await create_owner(
                session, tenant=owner, email=email, password=password, actor=cli_actor()
            )
            return user.id, created

    user_id, created = run_async(work)
    if created:
        console.print(f"Created owner {email} ({user_id}) for tenant {tenant}.")
    else:
        console.print(f"{email} already exists for tenant {tenant} ({user_id}); nothing changed.")


@app.command("set-password")
def set_password_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug.")],
    email: Annotated[str, typer.Option(help="The user's email.")],
    password_env: Annotated[
        str | None,
        typer.Option(help="Read the password from this environment variable instead of a prompt."),
    ] = None,
) -> None:
    """Rotate a console password: lifts a lockout and signs the account out everywhere."""
    settings = settings_or_exit(quiet_logs=True)
    password = _read_password(password_env, email)

    async def work() -> str:
        async with write_session(settings) as session:
            owner = await get_tenant_by_slug(session, tenant)
            user = await set_password(
                session, tenant=owner, email=email, password=password, actor=cli_actor()
            )
            return user.id

    user_id = run_async(work)
    console.print(f"Password set for {email} ({user_id}); its sessions have ended.")
