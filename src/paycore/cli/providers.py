"""`paycore providers …`: a tenant's payment-provider credentials, sealed at rest.

Secrets are read from a JSON file or standard input, or from `--credential NAME=VALUE`; prefer the
file or stdin, so a key does not end up in shell history. Output shows secrets masked only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from paycore.auth.models import KeyMode
from paycore.cli.common import (
    cli_actor,
    console,
    database_for,
    fail,
    print_json,
    print_table,
    run_async,
    settings_or_exit,
)
from paycore.clock import utcnow
from paycore.idempotency.service import reseal_answers
from paycore.invalidation import CacheKind, publish_from_outside
from paycore.merchant_webhooks.sealing import reseal_endpoints
from paycore.payments.providers.registry import build_registry
from paycore.provider_credentials import service
from paycore.provider_credentials.endpoints import configurable, credentials_out
from paycore.provisioning_targets.service import reseal_targets
from paycore.sealing import secrets_box
from paycore.secrets_box import SealError, SecretsKeyError, new_key_line
from paycore.tenancy.service import get_tenant_by_slug

app = typer.Typer(help="Payment-provider credentials of a tenant.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant slug.")]
ModeOption = Annotated[KeyMode, typer.Option("--mode", help="test or live.")]


def _read_credentials(pairs: list[str], credentials_file: str | None) -> dict[str, Any] | None:
    if credentials_file is None and not pairs:
        return None
    values: dict[str, Any] = {}
    if credentials_file is not None:
        raw = sys.stdin.read() if credentials_file == "-" else Path(credentials_file).read_text()
        try:
            loaded = json.loads(raw)
        except ValueError:
            fail("the credentials file is not JSON")
        if not isinstance(loaded, dict):
            fail("the credentials file must hold one JSON object")
        values.update(loaded)
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            fail(f"--credential takes NAME=VALUE, not {name!r}")
        values[name] = value
    return values


@app.command("set")
def set_provider(
    provider: Annotated[str, typer.Argument(help="stripe, paypal, razorpay or midtrans.")],
    tenant: TenantOption,
    mode: ModeOption,
    credential: Annotated[
        list[str] | None, typer.Option("--credential", help="NAME=VALUE; repeat for each field.")
    ] = None,
    credentials_file: Annotated[
        str | None, typer.Option("--credentials-file", help="A JSON object of fields; - reads stdin.")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option("--webhook-secret", help="The webhook signing secret (PayPal: webhook id).")
    ] = None,
    previous_valid_hours: Annotated[
        int, typer.Option(min=0, max=168, help="Keep accepting the old webhook secret this long.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Set (or update) a provider's credentials; omitted parts keep their stored value."""
    settings = settings_or_exit(quiet_logs=True)
    values = _read_credentials(credential or [], credentials_file)
    livemode = mode is KeyMode.LIVE

    async def work() -> tuple[dict[str, Any], bool]:
        async with database_for(settings) as database:
            registry = build_registry(settings, database)
            adapter = configurable(registry, provider)
            if livemode and not adapter.supports_livemode:
                fail(f"the {provider} provider takes test-mode payments only")
            assert adapter.credentials_model is not None
            async with database.session(write=True) as session:
                owner = await get_tenant_by_slug(session, tenant)
                row = await service.set_credentials(
                    session,
                    settings,
                    tenant_id=owner.id,
                    provider=provider,
                    livemode=livemode,
                    model=adapter.credentials_model,
                    secret_fields=adapter.secret_fields,
                    update=service.CredentialUpdate(
                        credentials=values,
                        webhook_secret=webhook_secret,
                        previous_webhook_secret_valid_hours=previous_valid_hours,
                    ),
                    actor=cli_actor(),
                    now=utcnow(),
                )
                shown = credentials_out(row, settings, owner.slug).model_dump(mode="json")
            # After the commit: every server forgets its cached credentials of this tenant.
            await publish_from_outside(settings, database, CacheKind.PROVIDER_CREDENTIALS, owner.id)
            return shown, adapter.webhook_secret_required

    shown, needs_webhook_secret = run_async(work)
    if as_json:
        print_json(shown)
        return
    console.print(
        f"Set {provider} ({mode.value}) for {tenant}: "
        + ", ".join(f"{k}={v}" for k, v in shown["credentials"].items())
    )
    if shown["webhook_secret"] is None and needs_webhook_secret:
        console.print("[yellow]No webhook secret: every webhook from this provider will be refused.[/]")
    console.print(f"Register this webhook URL at {provider}: {shown['webhook_url']}", highlight=False)


@app.command("list")
def list_providers(
    tenant: TenantOption,
    mode: ModeOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The providers a tenant has set up in a mode (secrets masked)."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[dict[str, Any]]:
        async with database_for(settings) as database, database.session(write=False) as session:
            owner = await get_tenant_by_slug(session, tenant)
            rows = await service.list_credentials(session, tenant_id=owner.id, livemode=mode is KeyMode.LIVE)
            return [credentials_out(row, settings, owner.slug).model_dump(mode="json") for row in rows]

    rows = run_async(work)
    if as_json:
        print_json({"data": rows})
        return
    table = Table("provider", "credentials", "webhook secret", "webhook URL")
    for row in rows:
        table.add_row(
            row["provider"],
            ", ".join(f"{k}={v}" for k, v in row["credentials"].items()),
            row["webhook_secret"] or "[red]none[/]",
            row["webhook_url"],
        )
    print_table(table)


@app.command("delete")
def delete_provider(provider: str, tenant: TenantOption, mode: ModeOption) -> None:
    """Remove a provider's credentials for one mode (its checkouts stop; its webhooks are refused)."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> None:
        async with database_for(settings) as database:
            async with database.session(write=True) as session:
                owner = await get_tenant_by_slug(session, tenant)
                await service.delete_credentials(
                    session,
                    tenant_id=owner.id,
                    provider=provider,
                    livemode=mode is KeyMode.LIVE,
                    actor=cli_actor(),
                )
            await publish_from_outside(settings, database, CacheKind.PROVIDER_CREDENTIALS, owner.id)

    run_async(work)
    console.print(f"Deleted {provider} ({mode.value}) credentials of {tenant}.")


@app.command("new-secrets-key")
def new_secrets_key(
    kid: Annotated[str, typer.Option("--kid", help="The new key's id (e.g. the date).")] = "k1",
) -> None:
    """Print a fresh key for PAYCORE_SECRETS_KEY. To rotate, put it first, keep the old one after
    it, run `paycore providers reseal`, then drop the old one."""
    try:
        line = new_key_line(kid)
    except SecretsKeyError as exc:
        fail(str(exc))
    sys.stdout.write(line + "\n")


@app.command("reseal")
def reseal() -> None:
    """Reseal every stored secret under the first key of PAYCORE_SECRETS_KEY: provider credentials,
    provisioning-target secrets, webhook endpoint secrets (sealing those stored before sealing
    existed) and saved idempotent answers."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> tuple[int, int, int, int]:
        async with database_for(settings) as database, database.session(write=True) as session:
            box = secrets_box(settings)
            return (
                await service.reseal_all(session, settings),
                await reseal_targets(session, settings),
                await reseal_endpoints(session, box),
                await reseal_answers(session, box),
            )

    try:
        credentials, targets, endpoints, answers = run_async(work)
    except SealError as exc:
        fail(f"{exc}; put the key it was sealed under back in PAYCORE_SECRETS_KEY (after the first)")
    console.print(f"Resealed {credentials} credential row(s) and {targets} provisioning target(s).")
    console.print(f"Resealed {endpoints} webhook endpoint(s) and {answers} saved idempotent answer(s).")
