"""What every command shares: settings that fail with exit 2, a database, an actor, output."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor
from paycore.config import Settings, SettingsError, load_settings
from paycore.db import Database, create_engine
from paycore.errors import PaycoreError
from paycore.ids import new_id
from paycore.logging import configure_logging, reset_request_id, set_request_id

T = TypeVar("T")

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

EXIT_FAILURE = 1
EXIT_BAD_CONFIG = 2


def settings_or_exit(*, quiet_logs: bool = False) -> Settings:
    """Load settings; on any problem print every one of them and exit 2, without a traceback."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        errors.print(f"[bold red]paycore cannot start: {len(exc.problems)} configuration problem(s)[/]")
        for problem in exc.problems:
            errors.print(f"  - {problem}", markup=False, highlight=False)
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    level = "WARNING" if quiet_logs and settings.log_level in {"DEBUG", "INFO"} else settings.log_level
    configure_logging(level=level, json=settings.effective_log_format == "json", stream=sys.stderr)
    return settings


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    errors.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"cli:{user}")


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine with a correlation id, turning paycore errors into a clean exit 1."""

    async def wrapped() -> T:
        token = set_request_id(new_id("cli"))
        try:
            return await work()
        finally:
            reset_request_id(token)

    try:
        return asyncio.run(wrapped())
    except PaycoreError as exc:
        fail(exc.message)


@asynccontextmanager
async def database_for(settings: Settings) -> AsyncIterator[Database]:
    database = Database(create_engine(settings))
    try:
        yield database
    finally:
        await database.dispose()


@asynccontextmanager
async def write_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    async with (
        database_for(settings) as database,
        database.session(write=True) as session,
    ):
        yield session


def print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")


JsonOption = Annotated[bool, typer.Option("--json", help='Print one JSON object: {"data": [...]}.')]


def print_rows(rows: list[dict[str, Any]], *, as_json: bool) -> None:
    """A list as a table for a person, or as JSON for a script. Ids are never cut short, however
    narrow the terminal: a person copies them into the next command (`keys revoke`, `outbox
    replay`); other columns wrap instead."""
    if as_json:
        print_json({"data": rows})
        return
    if not rows:
        console.print("(none)")
        return
    table = Table()
    for name in rows[0]:
        cells = [_cell(row[name]) for row in rows]
        if name == "id" or name.endswith("_id"):
            table.add_column(name, no_wrap=True, min_width=max(len(cell) for cell in cells))
        else:
            table.add_column(name.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(value) for value in row.values()))
    print_table(table)


def print_table(table: Table) -> None:
    """A table on a terminal fits the terminal; piped into a file or another program, it is
    printed whole at its natural width, never cut or wrapped at a guessed 80 columns."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options, table).maximum
    console.print(table, width=max(natural, console.width))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    return str(value)
