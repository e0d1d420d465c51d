"""The `paycore` command line (also `python -m paycore`). Commands are thin over services.

Each command's module is imported only when that command runs: the app, SQLAlchemy and the
provider SDKs take seconds to import, and `paycore --help` should answer at once. The one-line
help of every command lives here for the same reason (a test keeps it equal to the command's own).
"""

from __future__ import annotations

import importlib

import typer
from typer import _click as click  # typer vendors click: its commands are these classes
from typer.core import TyperCommand, TyperGroup

# name: (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": (
        "paycore.cli.server",
        "serve",
        "Serve the HTTP API (no background worker; run `paycore worker` beside it).",
    ),
    "worker": (
        "paycore.cli.server",
        "worker",
        "Run the background worker (periodic jobs); stops cleanly on SIGTERM or Ctrl-C.",
    ),
    "run": (
        "paycore.cli.server",
        "run",
        "Run the API and the worker in one process (the embedded default that `make run` starts).",
    ),
    "db": ("paycore.cli.database", "app", "Database schema: migrate and inspect."),
    "tenants": ("paycore.cli.tenants", "app", "Tenants (merchants)."),
    "keys": ("paycore.cli.keys", "app", "API keys."),
    "users": ("paycore.cli.users", "app", "Admin console users."),
    "demo": ("paycore.cli.demo", "app", "The local demo: a sale end to end on the sandbox (`paycore demo`)."),
    "events": ("paycore.cli.events", "app", "Provider events (the webhook inbox)."),
    "outbox": (
        "paycore.cli.outbox",
        "app",
        "The outbox: messages the worker delivers (emails, webhooks, alerts).",
    ),
    "fulfillments": ("paycore.cli.fulfillments", "app", "Fulfillments: provisioning after payment."),
    "providers": ("paycore.cli.providers", "app", "Payment-provider credentials of a tenant."),
    "platform-keys": (
        "paycore.cli.platform_keys",
        "app",
        "Platform keys: the operator's access to /v1/platform.",
    ),
    "server-templates": (
        "paycore.cli.server_templates",
        "app",
        "Server templates: the only servers tenants' products may create on the Pterodactyl panel.",
    ),
}


def load_command(name: str) -> click.Command:
    """The real command behind `name`, importing its module now."""
    module_name, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module_name), attribute)
    holder = typer.Typer(add_completion=False)
    holder.callback()(_top)  # a callback makes `holder` a group even with one command
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name=name)(target)
    return typer.main.get_group(holder).commands[name]


class _Listed(TyperCommand):
    """A command as `paycore --help` lists it: its name and help, nothing imported."""


class LazyCommands(TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 (click's signature)
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        if cmd_name not in COMMANDS:
            return None
        return _Listed(cmd_name, help=COMMANDS[cmd_name][2])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is None or command is None:
            return name, command, rest
        return name, load_command(name), rest


def _top() -> None:
    """paycore: self-hosted payments and orders."""


app = typer.Typer(
    name="paycore",
    cls=LazyCommands,
    help="paycore: self-hosted payments and orders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


app.callback()(_top)


def main() -> None:
    app()
