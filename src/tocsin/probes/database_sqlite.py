"""The SQLite backend of the ``database`` check: a read-only connection, in a thread.

The file is opened through a ``file:…?mode=ro`` URI, so a missing file is
reported, never created, and a query that writes is refused by SQLite itself.
sqlite3 blocks, so a run happens in a worker thread, and its deadlines are kept
inside SQLite, where a thread can be stopped: the busy timeout bounds the wait
for a lock, and a progress handler interrupts a statement past its limit.

Table sizes come from the ``dbstat`` virtual table (pages of each table and its
indexes). Where SQLite was built without it, the tables are ranked by row count
and their sizes are left unknown.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import TypeVar
from urllib.parse import quote

from tocsin.probes.database import (
    DatabaseFault,
    DatabaseReading,
    ReadPlan,
    TableSize,
    first_row,
    format_seconds,
)

T = TypeVar("T")

_PROGRESS_STEPS = 1000  # VM instructions between deadline checks: microseconds apart

_USER_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
_TABLE_BYTES = """
    SELECT m.tbl_name, SUM(s.pgsize) AS bytes
    FROM dbstat AS s JOIN sqlite_master AS m ON m.name = s.name
    WHERE m.tbl_name NOT LIKE 'sqlite_%'
    GROUP BY m.tbl_name ORDER BY bytes DESC, m.tbl_name LIMIT ?
"""


class _Deadline:
    """Interrupts the connection's statement once ``perf_counter()`` passes ``at``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.at = float("inf")
        self.passed = False
        connection.set_progress_handler(self._check, _PROGRESS_STEPS)

    def _check(self) -> int:
        if perf_counter() >= self.at:
            self.passed = True
            return 1  # non-zero: SQLite stops the statement with SQLITE_INTERRUPT
        return 0


class SQLiteReader:
    """Reads one SQLite file, read-only, within the plan's limits."""

    def __init__(self, path: Path, plan: ReadPlan) -> None:
        self._path = path
        self._plan = plan

    async def read(self) -> DatabaseReading:
        return await asyncio.to_thread(self._read)

    def _read(self) -> DatabaseReading:
        start = perf_counter()
        deadline = start + self._plan.timeout
        path = self._path
        if not path.exists():
            raise DatabaseFault(f"database file {path} does not exist")
        if path.is_dir():
            raise DatabaseFault(f"database file {path} is a directory")
        uri = f"file:{quote(str(path.absolute()))}?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=self._plan.timeout,
                                         isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise DatabaseFault(f"cannot open database file {path}: {exc}") from None
        try:
            return self._read_open(connection, start, deadline)
        finally:
            connection.close()

    def _read_open(self, connection: sqlite3.Connection, start: float,
                   deadline: float) -> DatabaseReading:
        limit = _Deadline(connection)
        plan = self._plan
        # Reading the schema is the first real access: it takes the lock and
        # proves the file is a database, so it belongs to connecting.
        names = self._run(connection, limit, "connecting", deadline, plan.timeout,
                          lambda: [row[0] for row in connection.execute(_USER_TABLES)])
        reading = DatabaseReading(connect_ms=(perf_counter() - start) * 1000)
        reading.values["tables"] = len(names)
        if plan.query is not None:
            statement_end = perf_counter() + plan.statement_limit(deadline)
            query_start = perf_counter()
            columns, row = self._run(connection, limit, "query", statement_end,
                                     plan.statement_limit(deadline),
                                     lambda: self._first_row(connection, plan.query or ""))
            reading.query_ms = (perf_counter() - query_start) * 1000
            reading.first_row = first_row(columns, row)
        try:
            page_size, page_count = self._run(
                connection, limit, "size", deadline, plan.timeout,
                lambda: (connection.execute("PRAGMA page_size").fetchone()[0],
                         connection.execute("PRAGMA page_count").fetchone()[0]))
            reading.values["size"] = float(page_size * page_count)
            if plan.tables:
                reading.tables = self._run(connection, limit, "table sizes", deadline,
                                           plan.timeout,
                                           lambda: self._largest(connection, names, plan.tables))
        except DatabaseFault as fault:
            reading.notes.append(f"table sizes skipped: {fault}")
        return reading

    @staticmethod
    def _first_row(connection: sqlite3.Connection,
                   query: str) -> tuple[list[str], tuple[object, ...] | None]:
        cursor = connection.execute(query)
        try:
            row = cursor.fetchone()
            columns = [column[0] for column in cursor.description or ()]
        finally:
            cursor.close()
        return columns, row

    @staticmethod
    def _largest(connection: sqlite3.Connection, names: list[str], count: int) -> list[TableSize]:
        try:
            rows = connection.execute(_TABLE_BYTES, (count,)).fetchall()
        except sqlite3.OperationalError as exc:
            if "dbstat" not in str(exc):
                raise
        else:
            return [TableSize(str(name), int(size)) for name, size in rows]
        # No dbstat in this SQLite build: rank by rows, sizes unknown.
        counted = []
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            rows_in = connection.execute(f"SELECT COUNT(*) FROM {quoted}").fetchone()[0]
            counted.append(TableSize(name, None, int(rows_in)))
        counted.sort(key=lambda table: (-(table.rows or 0), table.name))
        return counted[:count]

    def _run(self, connection: sqlite3.Connection, limit: _Deadline, phase: str,
             until: float, seconds: float, step: Callable[[], T]) -> T:
        """``step()`` with locks waited for and statements run until ``until`` at most."""
        remaining_ms = max(1, int((until - perf_counter()) * 1000))
        limit.at, limit.passed = until, False
        try:
            connection.execute(f"PRAGMA busy_timeout = {remaining_ms}")
            return step()
        except sqlite3.Error as exc:
            raise DatabaseFault(self._describe(exc, phase, seconds, limit.passed)) from None
        finally:
            limit.at = float("inf")

    def _describe(self, exc: sqlite3.Error, phase: str, seconds: float, interrupted: bool) -> str:
        code = getattr(exc, "sqlite_errorname", "")
        if code == "SQLITE_INTERRUPT" and interrupted:
            return f"{phase} timed out after {format_seconds(seconds)}"
        if code.startswith("SQLITE_BUSY") or "database is locked" in str(exc):
            return f"database is locked: still locked after {format_seconds(seconds)}"
        if code.startswith("SQLITE_READONLY"):
            return f"refused: the query writes, and a database check is read-only ({exc})"
        if code == "SQLITE_NOTADB":
            return f"{self._path} is not a SQLite database"
        if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in str(exc):
            return "the query must be a single statement"
        return f"{phase} failed: {exc}"
