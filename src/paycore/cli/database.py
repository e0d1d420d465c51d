"""`paycore db …`: migrations and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from paycore.cli.common import (
    EXIT_FAILURE,
    console,
    database_for,
    fail,
    print_table,
    run_async,
    settings_or_exit,
)
from paycore.config import normalize_database_url
from paycore.migrations import MigrationStatus, migration_status, upgrade_to_head
from paycore.ops.backup import BackupError
from paycore.ops.backup import backup as backup_database
from paycore.ops.backup import restore as restore_database
from paycore.ops.copy import CopyError, copy_database
from paycore.ops.verify import CheckResult, verify_database

app = typer.Typer(help="Database schema: migrate and inspect.", no_args_is_help=True)


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@app.command()
def migrate() -> None:
    """Apply pending migrations. Safe to run again: at head it changes nothing and says so."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> tuple[list[str], str]:
        async with database_for(settings) as database:
            applied = await upgrade_to_head(database.engine)
            status = await migration_status(database.engine)
        return applied, status.head

    applied, head = run_async(work)
    target = _safe_url(settings.database_url)
    if applied:
        console.print(
            f"Applied {len(applied)} migration(s) to {target}: {', '.join(applied)}. Now at head {head}."
        )
    else:
        console.print(f"Already at head {head} on {target}; nothing to do.")


@app.command()
def status(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when migrations are pending.")] = False,
) -> None:
    """Show the current revision, the head, and what is pending."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> MigrationStatus:
        async with database_for(settings) as database:
            return await migration_status(database.engine)

    result = run_async(work)
    console.print(f"database  {_safe_url(settings.database_url)}", highlight=False)
    console.print(f"current   {result.current or '(empty database)'}", highlight=False)
    console.print(f"head      {result.head}", highlight=False)
    console.print(
        f"pending   {', '.join(result.pending) if result.pending else 'none'}",
        highlight=False,
    )
    if result.ahead:
        console.print("note      the database is ahead of this code (a newer release migrated it)")
    if check and result.pending:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def verify() -> None:
    """Check the configured database keeps paycore's promises (safe on production: every check
    cleans up after itself). Exit 1 when a check fails."""
    settings = settings_or_exit(quiet_logs=True)

    async def work() -> list[CheckResult]:
        async with database_for(settings) as database:
            return await verify_database(database)

    results = run_async(work)
    table = Table("", "check", "detail", box=None, pad_edge=False)
    for result in results:
        mark = {True: "[green]ok[/]", False: "[red]FAIL[/]", None: "[dim]n/a[/]"}[result.passed]
        table.add_row(mark, result.name, result.detail)
    console.print(f"paycore db verify: {_safe_url(settings.database_url)}", highlight=False)
    print_table(table)
    passed = sum(1 for result in results if result.passed is True)
    failed = sum(1 for result in results if result.passed is False)
    skipped = len(results) - passed - failed
    console.print(f"{passed} passed, {failed} failed" + (f" ({skipped} not applicable)" if skipped else ""))
    if failed:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="Directory for the backup file.")],
) -> None:
    """Back up the configured database (PostgreSQL: pg_dump custom format; SQLite: online backup)."""
    settings = settings_or_exit(quiet_logs=True)
    try:
        written = run_async(lambda: backup_database(settings.database_url, to))
    except BackupError as exc:
        fail(str(exc))
    console.print(
        f"Backed up {_safe_url(settings.database_url)} to {written} ({written.stat().st_size} bytes)"
    )


@app.command()
def restore(
    source: Annotated[Path, typer.Option("--from", help="A backup file from `paycore db backup`.")],
    to: Annotated[str, typer.Option("--to", help="URL of an empty database to restore into.")],
) -> None:
    """Restore a backup into an empty database; then run `paycore db verify` against it."""
    settings_or_exit(quiet_logs=True)
    target = normalize_database_url(to)
    try:
        run_async(lambda: restore_database(source, target))
    except BackupError as exc:
        fail(str(exc))
    console.print(f"Restored {source} into {_safe_url(target)}")


@app.command()
def copy(
    source: Annotated[str, typer.Option("--from", help="URL of the paycore database to copy.")],
    target: Annotated[str, typer.Option("--to", help="URL of an empty, migrated paycore database.")],
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a copy that stopped; rows already there are skipped.")
    ] = False,
) -> None:
    """Copy every table from one paycore database to another (SQLite → PostgreSQL), then compare
    row counts and checksums; exit 1 on any difference."""
    settings = settings_or_exit(quiet_logs=True)
    with Progress(
        TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def shown(table: str, copied: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bars.add_task(table, total=total or 1)
            bars.update(tasks[table], completed=copied if total else 1)

        try:
            checks = run_async(lambda: copy_database(settings, source, target, resume=resume, progress=shown))
        except CopyError as exc:
            fail(str(exc))
    table = Table("table", "source rows", "target rows", "checksum", box=None, pad_edge=False)
    for check in checks:
        same = "[green]same[/]" if check.source_checksum == check.target_checksum else "[red]DIFFERENT[/]"
        table.add_row(check.table, str(check.source_rows), str(check.target_rows), same)
    print_table(table)
    different = [check.table for check in checks if not check.identical]
    if different:
        fail("the copy differs from the source in: " + ", ".join(different))
    console.print(f"Copied {sum(c.source_rows for c in checks)} rows in {len(checks)} tables; identical.")
