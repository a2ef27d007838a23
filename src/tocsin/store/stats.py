"""`table_stats`: how big each table of a store is, and what span of time it holds.

Read-only, for ``tocsin db stats``. Bytes are the table with its indexes:
SQLite's ``dbstat`` virtual table where the library has it (most builds do),
else None; PostgreSQL's ``pg_total_relation_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Double, Table, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from tocsin.store import schema
from tocsin.store.sql import SQLStore

#: The column that dates a row, by preference: the first a table has (in seconds, a
#: DOUBLE) is used. Rollups count hours and days instead: they show no span.
TIME_COLUMNS = ("started_at", "at", "opened_at", "created_at", "updated_at", "disabled_at",
                "applied_at")


@dataclass(frozen=True)
class TableStats:
    """One table: rows, bytes on disk (None when unknown), oldest and newest row time."""

    table: str
    rows: int
    bytes: int | None
    time_column: str | None
    oldest: float | None
    newest: float | None


def table_stats(store: SQLStore) -> list[TableStats]:
    """Every table of Tocsin's schema that exists in ``store``, in dependency order."""
    with store.engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        tables = [t for t in schema.metadata.sorted_tables if t.name in present]
        sizes = _sizes(conn, [t.name for t in tables])
        return [_one(conn, table, sizes.get(table.name)) for table in tables]


def _one(conn: Connection, table: Table, size: int | None) -> TableStats:
    column = next((table.c[name] for name in TIME_COLUMNS
                   if name in table.c and isinstance(table.c[name].type, Double)), None)
    if column is None:
        rows = conn.scalar(select(func.count()).select_from(table)) or 0
        return TableStats(table.name, rows, size, None, None, None)
    row = conn.execute(select(func.count(), func.min(column), func.max(column))).one()
    return TableStats(table.name, row[0], size, column.name, row[1], row[2])


def _sizes(conn: Connection, tables: list[str]) -> dict[str, int]:
    if conn.dialect.name == "postgresql":
        return {name: conn.scalar(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"),
                                  {"t": conn.dialect.identifier_preparer.quote(name)}) or 0
                for name in tables}
    if conn.dialect.name != "sqlite":
        return {}
    try:
        # dbstat names each b-tree: a table's own, and its indexes' (owned via tbl_name).
        found = conn.execute(text(
            "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat AS s "
            "JOIN sqlite_master AS m ON m.name = s.name GROUP BY m.tbl_name"))
        return {name: int(size) for name, size in found}
    except DBAPIError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
        conn.rollback()
        return {}
