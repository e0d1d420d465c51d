"""`paycore fulfillments …`: provisioning that needs a person, and putting it back in line."""

from __future__ import annotations

from typing import Annotated

import typer

from paycore.cli.common import (
    JsonOption,
    cli_actor,
    console,
    database_for,
    print_rows,
    run_async,
    settings_or_exit,
    write_session,
)
from paycore.clock import utcnow
from paycore.fulfillment.models import Fulfillment, FulfillmentStatus
from paycore.fulfillment.service import list_fulfillments, retry_fulfillment

app = typer.Typer(help="Fulfillments: provisioning after payment.", no_args_is_help=True)


@app.command("list")
def list_command(
    status: Annotated[
        FulfillmentStatus | None,
        typer.Option(help="pending, retrying, succeeded, needs_attention, canceled."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest fulfillments, optionally only those with one status."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[Fulfillment]:
        async with database_for(settings) as database, database.session(write=False) as session:
            return await list_fulfillments(session, status=status, limit=limit)

    rows = [
        {
            "id": fulfillment.id,
            "order_id": fulfillment.order_id,
            "kind": fulfillment.kind.value,
            "status": fulfillment.status.value,
            "tries": fulfillment.attempts,
            "last_error": fulfillment.last_error,
        }
        for fulfillment in run_async(work)
    ]
    print_rows(rows, as_json=as_json)


@app.command("retry")
def retry_command(fulfillment_id: str) -> None:
    """Put a needs_attention fulfillment back in line once its cause is fixed."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> str:
        async with write_session(settings) as session:
            fulfillment = await retry_fulfillment(
                session, fulfillment_id=fulfillment_id, actor=cli_actor(), now=utcnow()
            )
            return fulfillment.order_id

    order_id = run_async(work)
    console.print(f"{fulfillment_id} (order {order_id}) is back in line; the worker takes it next.")
