"""`paycore events …`: the provider-event inbox — what failed to apply, and replaying it."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from paycore.cli.common import (
    JsonOption,
    console,
    database_for,
    fail,
    print_rows,
    run_async,
    settings_or_exit,
)
from paycore.payments.inbox import replay_failed_event
from paycore.payments.models import EventResult, PaymentEvent

app = typer.Typer(help="Provider events (the webhook inbox).", no_args_is_help=True)


@app.command("list")
def list_events(
    result: Annotated[
        str | None,
        typer.Option(help="applied, ignored, unmatched, mismatch, failed, or pending (not yet applied)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest events, optionally only those with one result."""
    settings = settings_or_exit(quiet_logs=True)
    if result is not None and result != "pending" and result not in EventResult.__members__.values():
        fail(f"unknown result '{result}'")

    async def work() -> list[PaymentEvent]:
        statement = select(PaymentEvent).order_by(PaymentEvent.received_at.desc()).limit(limit)
        if result == "pending":
            statement = statement.where(PaymentEvent.processed_at.is_(None), PaymentEvent.result.is_(None))
        elif result is not None:
            statement = statement.where(PaymentEvent.result == EventResult(result))
        async with database_for(settings) as database, database.session(write=False) as session:
            return list(await session.scalars(statement))

    rows = [
        {
            "id": event.id,
            "received": event.received_at.isoformat(),
            "provider": event.provider,
            "livemode": event.livemode,
            "type": event.type,
            "result": event.result.value if event.result else "pending",
            "tries": event.attempts,
            "error": event.error,
        }
        for event in run_async(work)
    ]
    print_rows(rows, as_json=as_json)


@app.command("replay")
def replay(event_id: Annotated[str, typer.Argument(help="The event's id (evt_…).")]) -> None:
    """Put a `failed` event back in line; the worker applies it within a job period."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> bool:
        async with database_for(settings) as database:
            return await replay_failed_event(database, event_id)

    if not run_async(work):
        fail(f"{event_id} is not a failed event")
    console.print(f"{event_id} will be applied again by the worker.")
