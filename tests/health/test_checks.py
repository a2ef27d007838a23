"""The ready-made checks, each against the real thing: SQLite files, an engine, HTTP, disks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from postgres import PostgresServer
from targets import closed_port, hanging_target, http_target
from tocsin.health import HealthRegistry, HealthStatus, database, disk_space, http_dependency
from tocsin.health.checks import format_bytes

HEALTHY, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY


async def run_one(check: object, check_timeout: float = 2.0) -> tuple[HealthStatus, str | None]:
    health = HealthRegistry(cache_ttl=0)
    health.add("it", check, timeout=check_timeout)  # type: ignore[arg-type]
    report = (await health.run()).checks["it"]
    return report.status, report.message


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    return path


# -- database ------------------------------------------------------------------------------------


async def test_sqlite_file_is_healthy(sqlite_file: Path) -> None:
    assert await run_one(database(sqlite_file)) == (HEALTHY, None)
    assert await run_one(database(str(sqlite_file), query="SELECT COUNT(*) FROM users")) == (
        HEALTHY, None)
    assert await run_one(database(f"sqlite:///{sqlite_file}")) == (HEALTHY, None)


async def test_missing_sqlite_file_is_unhealthy_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"

    status, message = await run_one(database(missing))

    assert status is UNHEALTHY
    assert message == "OperationalError: unable to open database file"
    assert not missing.exists()


async def test_bad_query_is_unhealthy(sqlite_file: Path) -> None:
    status, message = await run_one(database(sqlite_file, query="SELECT * FROM nowhere"))

    assert status is UNHEALTHY
    assert message == "OperationalError: no such table: nowhere"


async def test_sqlalchemy_engine_on_sqlite(sqlite_file: Path, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{sqlite_file}")
    missing = create_engine(f"sqlite:///file:{tmp_path / 'gone.db'}?mode=ro&uri=true")
    try:
        assert await run_one(database(engine)) == (HEALTHY, None)
        status, message = await run_one(database(missing))
    finally:
        engine.dispose()
        missing.dispose()

    assert status is UNHEALTHY
    assert message is not None and message.startswith("OperationalError: ")


def test_database_refuses_what_it_cannot_check() -> None:
    with pytest.raises(TypeError, match="not int"):
        database(42)
    with pytest.raises(ValueError, match="pass a SQLAlchemy engine"):
        database("mysql://db/app")


# -- http_dependency -----------------------------------------------------------------------------


async def test_http_dependency_ok_500_refused() -> None:
    async with http_target() as target, closed_port() as closed:
        ok = await run_one(http_dependency(f"{target.url}/health"))
        error = await run_one(http_dependency(f"{target.url}/status/500?token=abc"))
        teapot = await run_one(http_dependency(f"{target.url}/status/418", expect_status=418))
        refused = await run_one(http_dependency(f"{closed.url}/health"))

    assert ok == (HEALTHY, None)
    assert error == (UNHEALTHY, "status 500")
    assert teapot == (HEALTHY, None)
    assert refused == (UNHEALTHY, "cannot connect: connection refused")


async def test_http_dependency_that_hangs_times_out() -> None:
    async with hanging_target() as target:
        own = await run_one(http_dependency(target.url, timeout=0.1))
        checks = await run_one(http_dependency(target.url), check_timeout=0.1)

    assert own == (UNHEALTHY, "timed out after 0.1 s")
    assert checks == (UNHEALTHY, "timed out after 0.1 s")


def test_http_dependency_wants_an_http_url() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        http_dependency("ftp://files/x")


# -- disk_space ----------------------------------------------------------------------------------


async def test_disk_space_within_limits_notes_the_use(tmp_path: Path) -> None:
    status, message = await run_one(disk_space(tmp_path, min_free_bytes=1, max_used_percent=100))

    assert status is HEALTHY
    assert message is not None and "% used, " in message and message.endswith(" free")


async def test_disk_space_thresholds_exceeded(tmp_path: Path) -> None:
    too_little = await run_one(disk_space(tmp_path, min_free_bytes=2**60))
    too_full = await run_one(disk_space(tmp_path, max_used_percent=0))

    assert too_little[0] is UNHEALTHY
    assert too_little[1] is not None
    assert too_little[1].endswith(": less than 1048576.0 TiB free")
    assert too_full[0] is UNHEALTHY
    assert too_full[1] is not None and too_full[1].endswith(": more than 0% used")


async def test_disk_space_of_a_missing_path_is_unhealthy(tmp_path: Path) -> None:
    status, message = await run_one(disk_space(tmp_path / "nowhere"))

    assert status is UNHEALTHY
    assert message is not None and message.startswith("FileNotFoundError: ")


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 1024**3) == "5.0 GiB"
    assert format_bytes(3 * 1024**4) == "3.0 TiB"


# -- database: PostgreSQL through asyncpg (the session's real server) ----------------------------


@pytest.mark.postgresql
async def test_postgresql_dsn_pool_and_connection(postgres_server: PostgresServer) -> None:
    import asyncpg

    assert await run_one(database(postgres_server.dsn())) == (HEALTHY, None)
    pool = await asyncpg.create_pool(postgres_server.dsn(), min_size=1, max_size=2)
    connection = await asyncpg.connect(postgres_server.dsn())
    try:
        assert await run_one(database(pool)) == (HEALTHY, None)
        assert await run_one(database(connection)) == (HEALTHY, None)
    finally:
        await connection.close()
        await pool.close()


@pytest.mark.postgresql
async def test_postgresql_wrong_password_is_unhealthy_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    status, message = await run_one(database(postgres_server.dsn(password="not-the-one-42")))

    assert status is UNHEALTHY
    assert message is not None and message.startswith("InvalidPasswordError: ")
    assert "not-the-one-42" not in message
