"""`paycore outbox …`: what waits to be sent, what died, and sending it again."""

from __future__ import annotations

from typing import Annotated

import typer

from paycore.cli.common import (
    JsonOption,
    console,
    database_for,
    fail,
    print_rows,
    run_async,
    settings_or_exit,
)
from paycore.outbox.models import OutboxMessage, OutboxStatus
from paycore.outbox.service_admin import list_messages, replay

app = typer.Typer(
    help="The outbox: messages the worker delivers (emails, webhooks, alerts).", no_args_is_help=True
)


@app.command("list")
def list_command(
    status: Annotated[
        OutboxStatus | None, typer.Option(help="pending, retrying, sent, dead, suppressed.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest messages, optionally only those with one status."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[OutboxMessage]:
        async with database_for(settings) as database, database.session(write=False) as session:
            return await list_messages(session, status=status, limit=limit)

    rows = [
        {
            "id": message.id,
            "created": message.created_at.isoformat(),
            "channel": message.channel.value,
            "topic": message.topic,
            "status": message.status.value,
            "tries": message.attempts,
            "last_error": message.last_error,
        }
        for message in run_async(work)
    ]
    print_rows(rows, as_json=as_json)


@app.command("replay")
def replay_command(
    message_id: Annotated[str | None, typer.Argument(help="A dead message's id (msg_…).")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Replay every dead message.")] = False,
) -> None:
    """Send dead messages again (after fixing what killed them); the worker picks them up at once."""
    if (message_id is None) == (not all_dead):
        fail("give a message id or --all-dead (not both)")
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> int:
        async with database_for(settings) as database, database.session(write=True) as session:
            return await replay(session, message_id=message_id, all_dead=all_dead)

    count = run_async(work)
    if count == 0 and message_id is not None:
        fail(f"{message_id} is not a dead message")
    console.print(f"{count} message(s) back in line.")
