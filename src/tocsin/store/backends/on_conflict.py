"""The upsert hooks of the databases that speak ``INSERT … ON CONFLICT`` (SQLite, PostgreSQL).

Both dialects' ``insert()`` offer the same ``on_conflict_do_update`` and
``on_conflict_do_nothing``; a backend passes its own ``insert`` and gets the
three :class:`~tocsin.store.sql.DialectHooks` that build statements with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Executable, Insert, Table


def on_conflict_hooks(dialect_insert: Callable[[Table], Any]) -> tuple[
        Callable[[Table], Executable], Callable[[Table], Executable],
        Callable[[Table, Sequence[str]], Insert]]:
    """``(upsert_latest, upsert, insert_or_skip)`` over the dialect's ``insert``."""

    def upsert_latest(table: Table) -> Executable:
        stmt = dialect_insert(table)
        built: Executable = stmt.on_conflict_do_update(
            index_elements=[table.c.check_id],
            set_={c.name: stmt.excluded[c.name] for c in table.c if c.name != "check_id"},
            where=stmt.excluded.started_at >= table.c.started_at,
        )
        return built

    def upsert(table: Table) -> Executable:
        stmt = dialect_insert(table)
        built: Executable = stmt.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_={c.name: stmt.excluded[c.name] for c in table.c if not c.primary_key},
        )
        return built

    def insert_or_skip(table: Table, columns: Sequence[str]) -> Insert:
        built: Insert = dialect_insert(table).on_conflict_do_nothing(
            index_elements=list(columns))
        return built

    return upsert_latest, upsert, insert_or_skip
