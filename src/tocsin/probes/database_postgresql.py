"""The PostgreSQL backend of the ``database`` check, through asyncpg (the ``postgresql`` extra).

One connection per run, closed at its end. The query runs in a ``READ ONLY``
transaction with ``SET LOCAL statement_timeout``, so the server itself refuses
a write and cancels a query past its limit (the limit is capped by what is
left of the check's timeout, so the server stops the query before the check
gives up on it, instead of running it on unseen). The statistics run in a
savepoint after it: their failure (a missing privilege, a timeout) is noted,
and does not make the check an error.

asyncpg's and the OS's exceptions stop here: :func:`describe_error` turns
each into a short message, with the password (if one was given) masked.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from time import perf_counter

import asyncpg

from tocsin.probes.database import (
    DatabaseFault,
    DatabaseReading,
    ReadPlan,
    TableSize,
    first_row,
    format_seconds,
    parse_database_url,
)

_PHASES = {"connecting": "connecting", "query": "running the query",
           "statistics": "reading statistics"}
_CLOSE_TIMEOUT = 1.0  # seconds to say goodbye before dropping the connection

_STATISTICS = """
    SELECT current_setting('max_connections')::int AS max_connections,
           (SELECT count(*) FROM pg_stat_activity
             WHERE backend_type = 'client backend') AS connections,
           pg_is_in_recovery() AS standby,
           CASE WHEN pg_is_in_recovery() THEN
             EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END AS lag_s,
           pg_database_size(current_database()) AS size,
           (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm', 'p')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_%') AS tables
"""

_LARGEST_TABLES = """
    SELECT n.nspname AS schema, c.relname AS name, pg_total_relation_size(c.oid) AS bytes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY bytes DESC, schema, name
    LIMIT $1
"""


class PostgreSQLReader:
    """Reads one PostgreSQL database within the plan's limits."""

    def __init__(self, url: str, password: str | None, plan: ReadPlan) -> None:
        self._url = url
        self._password = password
        self._plan = plan
        # Masked in every message, whichever way it was given.
        self._secrets = [secret for secret in (password, _url_password(url)) if secret]

    async def read(self) -> DatabaseReading:
        plan = self._plan
        start = perf_counter()
        deadline = start + plan.timeout
        phase = "connecting"
        connection: asyncpg.Connection | None = None
        try:
            async with asyncio.timeout(plan.timeout):
                connection = await asyncpg.connect(
                    self._url, password=self._password, timeout=plan.timeout,
                    statement_cache_size=0, server_settings={"application_name": "tocsin"})
                reading = DatabaseReading(connect_ms=(perf_counter() - start) * 1000)
                phase = "query"
                async with connection.transaction(readonly=True):
                    await self._query(connection, reading, deadline)
                    phase = "statistics"
                    await self._statistics(connection, reading)
                return reading
        except TimeoutError:
            if connection is not None:
                connection.terminate()  # mid-statement: nothing to say goodbye to
            raise DatabaseFault(f"timed out after {format_seconds(plan.timeout)} "
                                f"({_PHASES[phase]})") from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError) as exc:
            raise DatabaseFault(self._mask(describe_error(exc, phase))) from None
        finally:
            if connection is not None:
                await _close(connection)

    async def _query(self, connection: asyncpg.Connection, reading: DatabaseReading,
                     deadline: float) -> None:
        limit = self._plan.statement_limit(deadline)
        await connection.execute(f"SET LOCAL statement_timeout = {max(1, round(limit * 1000))}")
        query = self._plan.query
        if query is None:
            return
        query_start = perf_counter()
        try:
            row = await connection.fetchrow(query)
        except asyncpg.QueryCanceledError as exc:
            if "statement timeout" in str(exc):
                raise DatabaseFault(f"query timed out after {format_seconds(limit)}") from None
            raise
        reading.query_ms = (perf_counter() - query_start) * 1000
        if row is not None:
            reading.first_row = first_row(list(row.keys()), tuple(row.values()))

    async def _statistics(self, connection: asyncpg.Connection,
                          reading: DatabaseReading) -> None:
        try:
            async with connection.transaction():  # a savepoint: a failure here is only noted
                stats = await connection.fetchrow(_STATISTICS)
                tables = (await connection.fetch(_LARGEST_TABLES, self._plan.tables)
                          if self._plan.tables else [])
        except asyncpg.PostgresError as exc:
            reading.notes.append(f"statistics skipped: {self._mask(str(exc))}")
            return
        assert stats is not None  # a SELECT without FROM returns one row
        values = reading.values
        values["tables"] = float(stats["tables"])
        values["size"] = float(stats["size"])
        values["connections"] = float(stats["connections"])
        values["max_connections"] = float(stats["max_connections"])
        if stats["max_connections"]:
            values["connections_percent"] = 100.0 * stats["connections"] / stats["max_connections"]
        reading.details["role"] = "standby" if stats["standby"] else "primary"
        if stats["lag_s"] is not None:
            values["replication_lag"] = float(stats["lag_s"]) * 1000  # ms, like every duration
        reading.tables = [TableSize(_table_name(row["schema"], row["name"]), int(row["bytes"]))
                          for row in tables]

    def _mask(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message


def describe_error(exc: BaseException, phase: str) -> str:
    """A short message for an asyncpg, ssl or OS error met while ``phase``."""
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        return f"refused: the query writes, and a database check is read-only ({exc})"
    if isinstance(exc, asyncpg.PostgresError):
        # The server's own words: 'password authentication failed for user "x"',
        # 'database "x" does not exist', 'relation "x" does not exist', …
        return str(exc) if phase == "connecting" else f"{phase} failed: {exc}"
    if isinstance(exc, asyncpg.InterfaceError):
        return f"connection lost ({phase}): {exc}"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the database host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "connection refused"
    if isinstance(exc, OSError):
        if exc.errno == errno.ETIMEDOUT:
            return "connect timed out"
        return f"cannot connect: {exc.strerror or exc}"
    return f"invalid connection settings: {exc}"


def _url_password(url: str) -> str | None:
    try:
        return parse_database_url(url).password
    except ValueError:
        return None


def _table_name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


async def _close(connection: asyncpg.Connection) -> None:
    if connection.is_closed():
        return
    try:
        await connection.close(timeout=_CLOSE_TIMEOUT)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        connection.terminate()
