"""The `paycore` command line (also `python -m paycore`). Commands are thin over services."""

from __future__ import annotations

import typer

from paycore.cli import (
    database,
    demo,
    events,
    fulfillments,
    keys,
    outbox,
    platform_keys,
    providers,
    server,
    server_templates,
    tenants,
    users,
)

app = typer.Typer(
    name="paycore",
    help="paycore: self-hosted payments and orders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(server.serve)
app.command()(server.worker)
app.command()(server.run)
app.add_typer(database.app, name="db")
app.add_typer(tenants.app, name="tenants")
app.add_typer(keys.app, name="keys")
app.add_typer(users.app, name="users")
app.add_typer(demo.app, name="demo")
app.add_typer(events.app, name="events")
app.add_typer(outbox.app, name="outbox")
app.add_typer(fulfillments.app, name="fulfillments")
app.add_typer(providers.app, name="providers")
app.add_typer(platform_keys.app, name="platform-keys")
app.add_typer(server_templates.app, name="server-templates")


def main() -> None:
    app()
