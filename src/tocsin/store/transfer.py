"""Export a store to JSON lines and import it into another: SQLite → PostgreSQL, history kept.

The format, one JSON object a line::

    {"format": "tocsin-export", "version": 1, "schema_version": 7}
    {"table": "checks", "row": {"id": 1, "name": "api", "created_at": 1767225600.0}}
    {"table": "raw_results", "row": {"check_id": 1, "started_at": 1767225601.5, ...}}
    ...

Tables come in dependency order (``checks`` before ``raw_results``), each in
primary-key order, streamed both ways: neither side holds a table in memory.
Every column is a number, a string, bytes (written as base64 text) or null,
so JSON carries it exactly (floats round-trip through ``repr``). Ids are
preserved, so ``raw_results.check_id`` still points at its check; after an
import each id sequence (PostgreSQL) is moved past the largest id.
``schema_version`` is not exported: the target is migrated to the same
version before the rows go in.

An import is one transaction: on any error the target is left as it was.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import (
    Connection,
    LargeBinary,
    Table,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tocsin.store import schema
from tocsin.store.base import SchemaError, StoreError
from tocsin.store.sql import WRITE_INTENT, SQLStore

FORMAT = "tocsin-export"
FORMAT_VERSION = 1
BATCH = 1000  # rows per INSERT on import, and per fetch on export


class TransferError(StoreError):
    """The export file is not one this Tocsin can import, or the target refuses it."""


@dataclass
class TransferCount:
    """Rows exported or imported, by table, in the order they went."""

    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def add(self, table: str, n: int = 1) -> None:
        self.rows[table] = self.rows.get(table, 0) + n


def _data_tables(conn: Connection) -> list[Table]:
    """The tables of the schema the database is at (a table a migration dropped is not)."""
    present = set(inspect(conn).get_table_names())
    return [t for t in schema.metadata.sorted_tables
            if t is not schema.schema_version and t.name in present]


def _binary_columns(table: Table) -> list[str]:
    return [c.name for c in table.c if isinstance(c.type, LargeBinary)]


def export_store(store: SQLStore, out: IO[str]) -> TransferCount:
    """Write every row of ``store`` to ``out``; the store must be at this Tocsin's schema."""
    count = TransferCount()
    version = store.schema_version()
    if version != schema.LATEST_VERSION:
        raise SchemaError(
            f"{store.url} is at schema version {version}, this Tocsin at "
            f"{schema.LATEST_VERSION}: run `tocsin db migrate` on it first")
    out.write(json.dumps({"format": FORMAT, "version": FORMAT_VERSION,
                          "schema_version": version}) + "\n")
    with _translated(), store.engine.connect() as conn:
        for table in _data_tables(conn):
            count.rows[table.name] = 0
            binary = _binary_columns(table)
            order = list(table.primary_key.columns) or list(table.c)
            stmt = select(table).order_by(*order)
            for row in conn.execution_options(yield_per=BATCH).execute(stmt):
                values = row._asdict()
                for name in binary:
                    if values[name] is not None:
                        values[name] = base64.b64encode(values[name]).decode("ascii")
                out.write(json.dumps({"table": table.name, "row": values},
                                     ensure_ascii=False) + "\n")
                count.add(table.name)
    return count


def import_store(store: SQLStore, lines: IO[str], *, replace: bool = False) -> TransferCount:
    """Load an export into ``store`` (migrated first), in one transaction.

    Refuses a target that holds any row, unless ``replace``: then its rows are
    deleted first, in the same transaction.
    """
    rows = _parse(lines)
    header = next(rows, None)
    if header is None or header.get("format") != FORMAT:
        raise TransferError("not a Tocsin export (its first line is not the export header)")
    if header.get("version") != FORMAT_VERSION:
        raise TransferError(f"export format version {header.get('version')} is not "
                            f"{FORMAT_VERSION}; import it with the Tocsin that wrote it")
    if header.get("schema_version") != schema.LATEST_VERSION:
        raise TransferError(
            f"the export is of schema version {header.get('schema_version')}, this Tocsin's "
            f"is {schema.LATEST_VERSION}: export and import with the same Tocsin version")
    store.migrate()
    count = TransferCount()
    with _translated(), store.engine.connect() as conn:
        conn.execution_options(**{WRITE_INTENT: True})
        with conn.begin():
            tables = {t.name: t for t in _data_tables(conn)}
            _prepare_target(conn, store.url, replace)
            pending: list[dict[str, Any]] = []
            current: Table | None = None
            for line_no, record in enumerate(rows, start=2):
                name, row = record.get("table"), record.get("row")
                table = tables.get(name) if isinstance(name, str) else None
                if table is None or not isinstance(row, dict):
                    raise TransferError(f"line {line_no}: not a row of a Tocsin table")
                if table is not current:
                    _flush(conn, current, pending, count)
                    current = table
                pending.append(row)
                if len(pending) >= BATCH:
                    _flush(conn, current, pending, count)
            _flush(conn, current, pending, count)
            _advance_sequences(conn)
    return count


def _parse(lines: IO[str]) -> Iterator[dict[str, Any]]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TransferError(f"line {line_no}: not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise TransferError(f"line {line_no}: not a JSON object")
        yield record


def _prepare_target(conn: Connection, url: str, replace: bool) -> None:
    tables = _data_tables(conn)
    if replace:
        for table in reversed(tables):  # dependents first
            conn.execute(delete(table))
        return
    full = [t.name for t in tables if conn.scalar(select(func.count()).select_from(t))]
    if full:
        raise TransferError(f"{url} is not empty ({', '.join(full)} hold rows); import into "
                            "an empty database, or pass --force to replace its rows")


def _flush(conn: Connection, table: Table | None, pending: list[dict[str, Any]],
           count: TransferCount) -> None:
    if table is None or not pending:
        return
    unknown = {key for row in pending for key in row} - set(table.c.keys())
    if unknown:
        raise TransferError(f"table {table.name} has no columns {sorted(unknown)}")
    for name in _binary_columns(table):
        for row in pending:
            if row.get(name) is not None:
                row[name] = base64.b64decode(row[name])
    conn.execute(insert(table), pending)
    count.add(table.name, len(pending))
    pending.clear()


def _advance_sequences(conn: Connection) -> None:
    """Move each id sequence past the ids imported (SQLite needs nothing: it uses max(rowid))."""
    if conn.dialect.name != "postgresql":
        return
    for table in _data_tables(conn):
        for column in table.primary_key.columns:
            if column.autoincrement is not True:
                continue
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"),
                {"t": table.name, "c": column.name})


@contextmanager
def _translated() -> Iterator[None]:
    """Driver errors become :class:`StoreError`, as in every other store call."""
    try:
        yield
    except DBAPIError as error:
        raise StoreError(f"{type(error.orig).__name__}: {error.orig}") from error
    except SQLAlchemyError as error:
        raise StoreError(f"{type(error).__name__}: {error}") from error
