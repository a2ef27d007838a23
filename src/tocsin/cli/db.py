"""``tocsin db``: look after the store — stats, migrate, prune, export, import.

Each command opens the database the config's ``storage`` names, or ``--url``.
Commands that write (``migrate``, ``prune``, ``import``) take the store's process lock,
so they refuse while a ``tocsin run`` uses the same SQLite file; ``stats``
and ``export`` only read and run beside it.

Exit codes: 0 success; 1 the store failed or refused (the message names the
database); 2 a config error or invalid arguments.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NoReturn

import click

from tocsin.cli import EXIT_CONFIG, EXIT_FAILED, _load_or_exit, _print_table, config_option, main
from tocsin.store import StoreError, open_store
from tocsin.store.lock import StoreLock
from tocsin.store.sql import SQLStore
from tocsin.store.stats import TableStats, table_stats
from tocsin.store.transfer import export_store, import_store

url_option = click.option("--url", default=None, metavar="URL",
                          help="Database URL (default: the config's storage).")


@main.group()
def db() -> None:
    """Look after the store: stats, migrate, prune, export, import."""


def _url(config_path: Path | None, url: str | None) -> str:
    if url is not None:
        if config_path is not None:
            click.echo("give --config or --url, not both", err=True)
            sys.exit(EXIT_CONFIG)
        return url
    return _load_or_exit(config_path).config.storage


def _fail(url: str, error: StoreError) -> NoReturn:
    message = str(error)
    click.echo(message if url in message else f"{url}: {message}", err=True)
    sys.exit(EXIT_FAILED)


@contextmanager
def _opened(url: str, *, lock: bool = False) -> Iterator[SQLStore]:
    """The store at ``url``; any :class:`StoreError` inside ends the command with its message."""
    held: StoreLock | None = None
    shown = url
    try:
        held = StoreLock.acquire(url) if lock else None
        store = open_store(url)
        shown = store.url
        try:
            if not isinstance(store, SQLStore):
                raise StoreError(f"{store.url}: tocsin db does not support this store")
            yield store
        finally:
            store.close()
    except StoreError as error:
        _fail(shown, error)
    finally:
        if held is not None:
            held.release()


@db.command()
@config_option
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(config_path: Path | None, url: str | None, as_json: bool) -> None:
    """Rows and bytes of each table, and the oldest and newest row of each."""
    with _opened(_url(config_path, url)) as store:
        version = store.schema_version()
        found = table_stats(store)
        if as_json:
            click.echo(json.dumps({"url": store.url, "schema_version": version,
                                   "tables": [vars(t) for t in found]}, indent=2))
            return
        click.echo(f"{store.url} (schema v{version})")
        if found:
            _print_table(("TABLE", "ROWS", "BYTES", "OLDEST", "NEWEST"),
                         [_stats_row(t) for t in found], [""] * len(found))


def _stats_row(stats: TableStats) -> tuple[str, str, str, str, str]:
    return (stats.table, f"{stats.rows:,}", _bytes(stats.bytes), _when(stats.oldest),
            _when(stats.newest))


def _bytes(size: int | None) -> str:
    if size is None:
        return "-"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


@db.command()
@config_option
@url_option
def migrate(config_path: Path | None, url: str | None) -> None:
    """Apply the pending schema migrations and print the version before and after."""
    with _opened(_url(config_path, url), lock=True) as store:
        before = store.schema_version()
        after = store.migrate()
        if before == after:
            click.echo(f"{store.url}: already at schema v{after}")
        else:
            click.echo(f"{store.url}: schema v{before} → v{after}")


@db.command()
@config_option
@url_option
def prune(config_path: Path | None, url: str | None) -> None:
    """Apply retention now: remove raw results and rollups older than they are kept."""
    with _opened(_url(config_path, url), lock=True) as store:
        store.migrate()
        removed = store.prune(time.time())
        store.checkpoint()
    click.echo(f"{store.url}: removed {removed.raw:,} raw results, the 5-minute detail of "
               f"{removed.minutes:,} hours, {removed.hours:,} hourly and {removed.days:,} "
               "daily rollups")


@db.command("export")
@config_option
@url_option
@click.argument("path", type=click.File("w", encoding="utf-8", lazy=True))
def export_command(config_path: Path | None, url: str | None, path: IO[str]) -> None:
    """Write every row to PATH (or - for stdout) as JSON lines."""
    with _opened(_url(config_path, url)) as store:
        count = export_store(store, path)
        path.flush()
    click.echo(f"exported {count.total:,} rows from {store.url}", err=True)


@db.command("import")
@config_option
@url_option
@click.option("--force", is_flag=True,
              help="Replace the rows of a target that is not empty (one transaction).")
@click.argument("path", type=click.File("r", encoding="utf-8"))
def import_command(config_path: Path | None, url: str | None, force: bool,
                   path: IO[str]) -> None:
    """Load an export (PATH, or - for stdin) into an empty database, migrating it first."""
    with _opened(_url(config_path, url), lock=True) as store:
        count = import_store(store, path, replace=force)
    tables = ", ".join(f"{name} {n:,}" for name, n in count.rows.items() if n)
    click.echo(f"imported {count.total:,} rows into {store.url}" + (f" ({tables})" if tables
                                                                      else ""), err=True)
