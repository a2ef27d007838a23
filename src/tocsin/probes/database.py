"""The ``database`` check: connect, run one timed read-only query, report the largest tables.

Two backends, chosen by the URL's scheme: SQLite (``sqlite:///relative.db``,
``sqlite:////abs/path.db``; :mod:`~tocsin.probes.database_sqlite`) and
PostgreSQL (``postgresql://user@host:port/db``, through asyncpg, the
``postgresql`` extra; :mod:`~tocsin.probes.database_postgresql`). Each run opens
one connection and closes it: at one check a minute a pool would only hold
connections the server could give to its application.

A run is OK when it connected and the query ran, and ERROR when it could not:
refused, down, wrong password, a missing SQLite file (which is never created),
a lock held past the timeout, a query that writes (it runs read-only) or that
outlives ``statement_timeout``. ``values``:

- ``connect_time`` and ``query_time`` in ms (``query_time > 100ms`` works);
- ``value``: the first column of the query's first row, when it is a number;
- ``tables`` (how many), ``size`` (bytes of the whole database);
- PostgreSQL also: ``connections``, ``max_connections``, ``connections_percent``,
  and on a standby ``replication_lag`` (ms since the last replayed transaction).

``details``: ``tables`` (the ``tables`` largest, ``[{"name", "bytes"}]``) and
``query_result`` (the first row, column → value).

Exceptions::

    DatabaseFault         what a backend could not do, in words safe to show
                          (never the password); the probe makes it an ERROR result
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from tocsin.config.durations import Duration
from tocsin.probes.base import (
    CheckConfig,
    CheckResult,
    CheckSpec,
    CheckStatus,
    Probe,
    ProbeError,
    wall_clock,
)
from tocsin.probes.context import ProbeContext
from tocsin.probes.registry import register

URL_HELP = "use sqlite:///relative/path.db, sqlite:////absolute/path.db or " \
           "postgresql://user@host:5432/database"

# The first word of a query a check may run. The database enforces read-only at
# run time (a READ ONLY transaction, a read-only SQLite connection); this only
# refuses the obvious mistakes early, with a line number.
READ_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN", "PRAGMA"})
_COMMENTS = re.compile(r"\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_MAX_TEXT = 200  # characters of a text column kept in details


# -- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed database URL: ``path`` for SQLite, the URL itself for PostgreSQL."""

    kind: Literal["sqlite", "postgresql"]
    path: Path | None = None
    password: str | None = field(default=None, repr=False)


def parse_database_url(text: str) -> DatabaseURL:
    """Parse ``text``; ValueError otherwise, never repeating the URL (it may hold a password)."""
    url = text.strip()
    if "://" not in url:
        raise ValueError(f"not a database URL: {URL_HELP}")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise ValueError(f"a SQLite URL has three slashes before a relative path: {URL_HELP}")
        path = unquote(url[len("sqlite:///"):])
        if "?" in path or "#" in path:
            raise ValueError("a SQLite URL takes no options (the database is always opened "
                             "read-only): write sqlite:///path.db")
        if not path or path.endswith("/") or path == ":memory:":
            raise ValueError(f"a SQLite URL must name a database file: {URL_HELP}")
        return DatabaseURL("sqlite", path=Path(path))
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018  (urlsplit checks the port lazily)
        except ValueError:
            raise ValueError("the URL's port must be a number from 1 to 65535") from None
        return DatabaseURL("postgresql", password=unquote(parts.password or "") or None)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: {URL_HELP}")


def check_query(query: str) -> str:
    """Refuse an empty query or one whose first word writes; the database refuses the rest."""
    text = query.strip()
    head = text
    while match := _COMMENTS.match(head):
        head = head[match.end():]
    word = _FIRST_WORD.match(head.lstrip("( \t\n"))
    if word is None:
        raise ValueError("the query is empty: write one read-only statement, "
                         "e.g. SELECT COUNT(*) FROM users")
    keyword = word.group(0).upper()
    if keyword not in READ_KEYWORDS:
        raise ValueError(f"a database check runs one read-only query, not {keyword}: start it "
                         f"with {', '.join(sorted(READ_KEYWORDS))}")
    return text


class DatabaseCheckConfig(CheckConfig):
    """A ``database`` check: ``url``, an optional ``query``, how many ``tables`` to list.

    The password comes from the environment: ``${PGPASSWORD}`` in the URL, a
    ``password:`` key (``password: ${DB_PASSWORD}``), or asyncpg's own lookup
    (``PGPASSWORD``, ``~/.pgpass``) when neither is given.
    """

    type: Literal["database"]
    url: str = Field(repr=False)  # it may hold a password
    password: SecretStr | None = None
    query: str | None = None
    tables: int = Field(default=5, ge=0, le=100)
    statement_timeout: Duration | None = None

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        parse_database_url(url)
        return url.strip()

    @field_validator("query")
    @classmethod
    def _read_only_query(cls, query: str | None) -> str | None:
        return None if query is None else check_query(query)

    @field_validator("statement_timeout")
    @classmethod
    def _positive(cls, seconds: float | None) -> float | None:
        if seconds is not None and seconds <= 0:
            raise ValueError("statement_timeout must be longer than zero, e.g. 5s")
        return seconds

    @model_validator(mode="after")
    def _one_password(self) -> DatabaseCheckConfig:
        parsed = parse_database_url(self.url)
        if self.password is not None and parsed.kind == "sqlite":
            raise ValueError("a SQLite database takes no password: remove `password:`")
        if self.password is not None and parsed.password is not None:
            raise ValueError("give the password in the URL or in `password:`, not both")
        return self


# -- what a backend reads ------------------------------------------------------------------------


class DatabaseFault(Exception):
    """A backend could not connect or query; the message is safe to show and store."""


@dataclass(frozen=True, slots=True)
class TableSize:
    """One table and its size on disk, indexes included (``bytes`` None when unknown)."""

    name: str
    bytes: int | None
    rows: int | None = None

    def as_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"name": self.name, "bytes": self.bytes}
        if self.rows is not None:
            detail["rows"] = self.rows
        return detail


@dataclass(slots=True)
class DatabaseReading:
    """What one run of a backend found."""

    connect_ms: float
    query_ms: float | None = None
    first_row: dict[str, Any] | None = None
    tables: list[TableSize] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)  # table count, size, connections…
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was skipped, and why


class DatabaseReader(Protocol):
    """A backend: one connection, one query, the largest tables, closed again."""

    async def read(self) -> DatabaseReading:
        """Raise :class:`DatabaseFault` when the database cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What a backend is asked to do, and within which limits (seconds)."""

    query: str | None
    tables: int
    timeout: float
    statement_timeout: float

    def statement_limit(self, deadline: float) -> float:
        """Seconds the next statement may take: its own limit, capped by what is left.

        What is left keeps a margin for the database to say that it stopped the
        statement, so that its answer, not the check's deadline, ends the run.
        """
        margin = min(0.25, self.timeout / 10)
        return max(0.001, min(self.statement_timeout, deadline - perf_counter() - margin))


def json_value(value: Any) -> Any:
    """A column value as JSON can keep it: long texts cut, bytes summarised."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return json_value(str(value))


def first_row(columns: Sequence[str], row: Sequence[Any] | None) -> dict[str, Any] | None:
    """The first row of a result as column → JSON value (None when there was no row)."""
    if row is None:
        return None
    return {str(column): json_value(value) for column, value in zip(columns, row, strict=False)}


def numeric(value: Any) -> float | None:
    """``value`` as a float when it is a number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        return None
    return float(value)


def format_seconds(seconds: float) -> str:
    """``2.0`` → ``2 s``, ``0.5`` → ``0.5 s``: as the http check writes its timeouts."""
    return f"{round(seconds, 3):g} s"


# -- the probe -----------------------------------------------------------------------------------


def _reader(spec: CheckSpec[DatabaseCheckConfig]) -> DatabaseReader:
    config = spec.config
    return open_reader(spec.name, config, config.query, config.tables, spec.timeout)


def open_reader(check: str, database: DatabaseCheckConfig, query: str | None, tables: int,
                timeout: float) -> DatabaseReader:
    """A reader of ``database`` for check ``check``: ``query`` and the ``tables`` largest
    tables, within ``timeout`` (and the database's own ``statement_timeout``)."""
    try:
        url = parse_database_url(database.url)
    except ValueError as exc:
        raise ProbeError(f"check {check!r}: {exc}") from None
    statement_timeout = database.statement_timeout if database.statement_timeout is not None \
        else timeout
    plan = ReadPlan(query, tables, timeout, min(statement_timeout, timeout))
    if url.kind == "sqlite":
        from tocsin.probes.database_sqlite import SQLiteReader

        assert url.path is not None
        return SQLiteReader(url.path, plan)
    try:
        from tocsin.probes.database_postgresql import PostgreSQLReader
    except ImportError:
        raise ProbeError(f"check {check!r}: PostgreSQL needs asyncpg: "
                         "pip install 'tocsin[postgresql]'") from None
    password = database.password.get_secret_value() if database.password is not None else None
    return PostgreSQLReader(database.url, password, plan)


@register
class DatabaseProbe(Probe[DatabaseCheckConfig]):
    """Connect to a database, time one read-only query, and list its largest tables."""

    type: ClassVar[str] = "database"
    config_model: ClassVar[builtins.type[CheckConfig]] = DatabaseCheckConfig

    def __init__(self, spec: CheckSpec[DatabaseCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        self._reader = _reader(spec)

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        # The backends keep their own deadlines; this one only catches a bug in them.
        try:
            async with asyncio.timeout(self.spec.timeout + 1.0):
                reading = await self._reader.read()
        except DatabaseFault as fault:
            return CheckResult.error(self.spec.name, started_at, str(fault),
                                     latency_ms=(perf_counter() - start) * 1000)
        except TimeoutError:
            return CheckResult.error(self.spec.name, started_at,
                                     f"timed out after {format_seconds(self.spec.timeout)}",
                                     latency_ms=(perf_counter() - start) * 1000)
        return self._result(reading, started_at, (perf_counter() - start) * 1000)

    def _result(self, reading: DatabaseReading, started_at: float,
                latency_ms: float) -> CheckResult:
        values: dict[str, float] = {"connect_time": reading.connect_ms, **reading.values}
        timings: dict[str, float] = {"connect": reading.connect_ms}
        if reading.query_ms is not None:
            values["query_time"] = reading.query_ms
            timings["query"] = reading.query_ms
        if reading.first_row:
            value = numeric(next(iter(reading.first_row.values())))
            if value is not None:
                values["value"] = value
        details: dict[str, Any] = {"tables": [table.as_detail() for table in reading.tables],
                                   **reading.details}
        if self.spec.config.query is not None:
            details["query_result"] = reading.first_row
        return self.new_result(
            CheckStatus.OK, started_at, latency_ms=latency_ms, message="; ".join(reading.notes),
            values=values, timings=timings, details=details,
        )

