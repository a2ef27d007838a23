"""The database probe against real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from yarl import URL

from postgres import PostgresServer
from targets import closed_port
from tocsin.alerting.conditions import parse_condition
from tocsin.probes import CheckResult, CheckSpec, CheckStatus, ProbeContext, probe_types
from tocsin.probes.database import DatabaseCheckConfig, DatabaseProbe

OK, ERROR = CheckStatus.OK, CheckStatus.ERROR


def database_probe(url: str, timeout: float = 2.0, **config: Any) -> DatabaseProbe:
    spec = CheckSpec(
        name="demo:database", service="demo", service_url=None, interval=60.0, timeout=timeout,
        config=DatabaseCheckConfig.model_validate({"type": "database", "url": url, **config}),
    )
    return DatabaseProbe(spec, ProbeContext())


async def run_timed(probe: DatabaseProbe) -> tuple[CheckResult, float]:
    start = time.perf_counter()
    result = await probe.run()
    return result, time.perf_counter() - start


def test_database_is_a_registered_check_type() -> None:
    assert probe_types()["database"] is DatabaseProbe


# -- SQLite --------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A database with a big table (activities), a smaller one (users) and an empty one."""
    path = tmp_path / "demo.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE activities (id INTEGER PRIMARY KEY, note TEXT)")
        connection.execute("CREATE INDEX activities_note ON activities (note)")
        connection.executemany("INSERT INTO activities (note) VALUES (?)",
                               [(f"activity {i} " + "x" * 200,) for i in range(300)])
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('ada')")
        connection.executemany("INSERT INTO users (name) VALUES (?)", [("y" * 400,)] * 20)
        connection.execute("CREATE TABLE empty (id INTEGER)")
    connection.close()
    return path


def file_size(path: Path) -> int:
    return path.stat().st_size


def directory_listing(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path: sqlite:////tmp/…


async def test_sqlite_reports_connect_and_query_time_value_and_tables(sqlite_file: Path) -> None:
    probe = database_probe(sqlite_url(sqlite_file), query="SELECT COUNT(*) AS n FROM activities")

    result = await probe.run()

    assert result.status is OK, result.message
    assert result.message == ""
    values = result.values
    assert values["value"] == 300
    assert values["tables"] == 3
    assert 0 < values["connect_time"] < 1000 and 0 < values["query_time"] < 1000
    assert values["size"] == file_size(sqlite_file)
    assert result.timings == {"connect": values["connect_time"], "query": values["query_time"]}
    assert result.details["query_result"] == {"n": 300}
    tables = result.details["tables"]
    assert [table["name"] for table in tables] == ["activities", "users", "empty"]
    assert tables[0]["bytes"] > 300 * 200  # rows and their index
    assert all(isinstance(table["bytes"], int) for table in tables)


async def test_sqlite_lists_only_the_largest_tables(sqlite_file: Path) -> None:
    result = await database_probe(sqlite_url(sqlite_file), tables=1).run()

    assert result.status is OK, result.message
    assert [table["name"] for table in result.details["tables"]] == ["activities"]
    assert result.values["tables"] == 3  # the count is of every table
    assert "query_time" not in result.values and "query_result" not in result.details


async def test_sqlite_query_result_that_is_not_a_number_gives_no_value(sqlite_file: Path) -> None:
    result = await database_probe(sqlite_url(sqlite_file),
                                  query="SELECT name, id FROM users ORDER BY id").run()

    assert result.status is OK, result.message
    assert "value" not in result.values
    assert result.details["query_result"] == {"name": "ada", "id": 1}


async def test_missing_sqlite_file_is_down_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"

    result = await database_probe(sqlite_url(path), query="SELECT 1").run()

    assert result.status is ERROR
    assert result.message == f"database file {path} does not exist"
    assert directory_listing(tmp_path) == []


async def test_a_file_that_is_not_a_database_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database at all, but long enough to have a header" * 20)

    result = await database_probe(sqlite_url(path)).run()

    assert result.status is ERROR
    assert result.message == f"{path} is not a SQLite database"


async def test_locked_sqlite_database_is_an_error_within_the_timeout(sqlite_file: Path) -> None:
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result, elapsed = await run_timed(
            database_probe(sqlite_url(sqlite_file), timeout=0.5, query="SELECT 1"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert result.status is ERROR
    assert result.message == "database is locked: still locked after 0.5 s"
    assert 0.4 < elapsed < 1.5


@pytest.mark.parametrize("query", [
    "WITH one AS (SELECT 1) INSERT INTO users (name) SELECT 'eve' FROM one",
    "PRAGMA user_version = 7",
])
async def test_sqlite_refuses_a_query_that_writes(sqlite_file: Path, query: str) -> None:
    result = await database_probe(sqlite_url(sqlite_file), query=query).run()

    assert result.status is ERROR
    assert result.message.startswith("refused: the query writes, and a database check is "
                                     "read-only"), result.message
    with sqlite3.connect(sqlite_file) as connection:
        assert connection.execute("SELECT COUNT(*) FROM users").fetchone() == (21,)
        assert connection.execute("PRAGMA user_version").fetchone() == (0,)
    connection.close()


async def test_sqlite_query_past_its_statement_timeout_is_stopped(sqlite_file: Path) -> None:
    forever = ("WITH RECURSIVE counter(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM counter) "
               "SELECT COUNT(*) FROM counter")

    result, elapsed = await run_timed(database_probe(
        sqlite_url(sqlite_file), timeout=5.0, statement_timeout="300ms", query=forever))

    assert result.status is ERROR
    assert result.message == "query timed out after 0.3 s"
    assert elapsed < 1.5


async def test_sqlite_query_that_fails_says_why(sqlite_file: Path) -> None:
    result = await database_probe(sqlite_url(sqlite_file), query="SELECT * FROM nope").run()

    assert result.status is ERROR
    assert result.message == "query failed: no such table: nope"


async def test_query_time_rule_compares_milliseconds(sqlite_file: Path) -> None:
    result = await database_probe(sqlite_url(sqlite_file), query="SELECT 1").run()

    assert parse_condition("query_time > 100ms").evaluate(result).held is False
    assert parse_condition("query_time < 1s").evaluate(result).held is True
    assert parse_condition("value == 1").evaluate(result).held is True


# -- PostgreSQL ----------------------------------------------------------------------------------

pg = pytest.mark.postgresql
PG_DATABASE = "probe_test"


@pytest.fixture(scope="module")
def pg_database(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A database of this module's own: big (5000 rows), small (1 row), other.t; a sequence."""

    async def create() -> None:
        admin = await asyncpg.connect(postgres_server.url)
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
        await admin.execute(f"CREATE DATABASE {PG_DATABASE}")
        await admin.close()
        connection = await asyncpg.connect(postgres_server.dsn(database=PG_DATABASE))
        await connection.execute("""
            CREATE TABLE big (id serial PRIMARY KEY, note text);
            INSERT INTO big (note) SELECT repeat('x', 200) FROM generate_series(1, 5000);
            CREATE TABLE small (id int);
            INSERT INTO small VALUES (1);
            CREATE SCHEMA other;
            CREATE TABLE other.t (id int);
            INSERT INTO other.t SELECT generate_series(1, 100);
            CREATE SEQUENCE counter;
        """)
        await connection.close()

    async def drop() -> None:
        admin = await asyncpg.connect(postgres_server.url)
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        await admin.close()

    asyncio.run(create())
    yield postgres_server
    asyncio.run(drop())


def pg_url(server: PostgresServer, **login: str) -> str:
    return server.dsn(database=PG_DATABASE, **login)


@pg
async def test_postgresql_reports_times_value_connections_and_tables(
    pg_database: PostgresServer,
) -> None:
    probe = database_probe(pg_url(pg_database), query="SELECT count(*) FROM big")

    result = await probe.run()

    assert result.status is OK, result.message
    values = result.values
    assert values["value"] == 5000
    assert 0 < values["connect_time"] < 2000 and 0 < values["query_time"] < 2000
    assert values["tables"] == 3
    assert values["size"] > 1_000_000
    assert values["max_connections"] >= 10  # initdb picks what shared memory allows
    assert 1 <= values["connections"] <= values["max_connections"]
    assert values["connections_percent"] == pytest.approx(
        100 * values["connections"] / values["max_connections"])
    assert "replication_lag" not in values  # a primary
    assert result.details["role"] == "primary"
    assert result.details["query_result"] == {"count": 5000}
    tables = result.details["tables"]
    assert [table["name"] for table in tables] == ["big", "other.t", "small"]
    assert tables[0]["bytes"] > 5000 * 200


@pg
async def test_postgresql_lists_only_the_largest_tables(pg_database: PostgresServer) -> None:
    result = await database_probe(pg_url(pg_database), tables=1).run()

    assert result.status is OK, result.message
    assert [table["name"] for table in result.details["tables"]] == ["big"]
    assert "query_time" not in result.values


@pg
async def test_postgresql_password_may_come_from_the_password_key(
    pg_database: PostgresServer,
) -> None:
    url = pg_url(pg_database, password="")
    assert pg_database.password not in url

    result = await database_probe(url, password=pg_database.password, query="SELECT 1").run()

    assert result.status is OK, result.message


@pg
async def test_wrong_password_names_the_user_not_the_password(
    pg_database: PostgresServer,
) -> None:
    result = await database_probe(pg_url(pg_database, password="not-the-pw-4711"),
                                  query="SELECT 1").run()

    assert result.status is ERROR
    assert result.message == 'password authentication failed for user "postgres"'
    assert "4711" not in repr(result)


@pg
async def test_missing_postgresql_database_is_an_error(pg_database: PostgresServer) -> None:
    result = await database_probe(pg_database.dsn(database="nope")).run()

    assert result.status is ERROR
    assert result.message == 'database "nope" does not exist'


@pg
@pytest.mark.parametrize("query", [
    "WITH gone AS (DELETE FROM small RETURNING id) SELECT count(*) FROM gone",
    "SELECT nextval('counter')",
])
async def test_postgresql_refuses_a_query_that_writes(
    pg_database: PostgresServer, query: str,
) -> None:
    result = await database_probe(pg_url(pg_database), query=query).run()

    assert result.status is ERROR
    assert result.message.startswith("refused: the query writes, and a database check is "
                                     "read-only (cannot execute"), result.message
    connection = await asyncpg.connect(pg_url(pg_database))
    assert await connection.fetchval("SELECT count(*) FROM small") == 1
    await connection.close()


@pg
async def test_postgresql_query_past_its_statement_timeout_is_cancelled(
    pg_database: PostgresServer,
) -> None:
    result, elapsed = await run_timed(database_probe(
        pg_url(pg_database), timeout=5.0, statement_timeout="500ms",
        query="SELECT pg_sleep(10)"))

    assert result.status is ERROR
    assert result.message == "query timed out after 0.5 s"
    assert elapsed < 2.0


@pg
async def test_postgresql_query_is_cancelled_by_the_server_before_the_check_times_out(
    pg_database: PostgresServer,
) -> None:
    # No statement_timeout: the check's own timeout bounds the query on the server.
    result, elapsed = await run_timed(database_probe(
        pg_url(pg_database), timeout=1.0, query="SELECT pg_sleep(10)"))

    assert result.status is ERROR
    assert result.message.startswith("query timed out after"), result.message
    assert elapsed < 2.0


@pg
async def test_postgresql_server_down_is_connection_refused() -> None:
    async with closed_port() as target:
        port = URL(target.url).port
        result = await database_probe(f"postgresql://postgres:pw@127.0.0.1:{port}/db",
                                      query="SELECT 1").run()

    assert result.status is ERROR
    assert result.message == "connection refused"


@pg
async def test_each_run_closes_its_connection(pg_database: PostgresServer) -> None:
    probe = database_probe(pg_url(pg_database), query="SELECT 1")
    for _ in range(3):
        assert (await probe.run()).status is OK

    connection = await asyncpg.connect(pg_database.url)
    try:
        for _ in range(50):
            left = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tocsin'")
            if left == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    assert left == 0


@pg
async def test_query_time_rule_evaluates_on_a_slow_query(pg_database: PostgresServer) -> None:
    slow = await database_probe(pg_url(pg_database), query="SELECT pg_sleep(0.15)").run()
    fast = await database_probe(pg_url(pg_database), query="SELECT 1").run()

    rule = parse_condition("query_time > 100ms")
    assert slow.status is OK and fast.status is OK
    assert rule.evaluate(slow).held is True
    assert rule.evaluate(fast).held is False
