"""Fixtures for the store tests.

``store_url`` is parametrised over every backend Tocsin ships, so every
``store`` test runs on each: SQLite in a file and in memory, and PostgreSQL (a
fresh database per test on the session's server, see ``postgres_database``).
``shared_url`` is for tests that open one database from several stores.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from postgres import PostgresServer
from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import Store, open_store
from tocsin.store.backends.postgresql import PASSWORD_ENV

_POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgresql)
_database_numbers = itertools.count(1)


@pytest.fixture(params=["sqlite-file", "sqlite-memory", _POSTGRESQL])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'tocsin.db'}"
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_database")
        return url
    return "sqlite:///:memory:"


@pytest.fixture(params=["sqlite-file", _POSTGRESQL])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that a second connection (or process) can open too, on each backend."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_database")
        return url
    return f"sqlite:///{tmp_path / 'tocsin.db'}"


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    """A SQLite database that a second connection (or process) can open too."""
    return f"sqlite:///{tmp_path / 'tocsin.db'}"


@pytest.fixture(scope="session")
def postgres_admin(postgres_server: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    """The superuser's connection, outside any transaction (CREATE DATABASE needs that)."""
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def postgres_database(
    postgres_server: PostgresServer,
    postgres_admin: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A new empty database for one test, dropped after it; its URL, without the password.

    The password is in ``TOCSIN_DB_PASSWORD``, where a deployment would put it.
    """
    name = f"tocsin_test_{next(_database_numbers)}"
    postgres_admin.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    try:
        yield postgres_server.dsn(password="", database=name)
    finally:
        # FORCE: a store the test did not close still holds connections.
        postgres_admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    opened.migrate()
    yield opened
    opened.close()


def run_sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one SQL statement on the database at ``url`` behind the store's back; its rows."""
    password = None
    if url.startswith("postgresql"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        password = os.environ[PASSWORD_ENV]
    engine = create_engine(url, connect_args={"password": password} if password else {})
    try:
        with engine.begin() as conn:
            found = conn.execute(text(statement))
            return [tuple(row) for row in found] if found.returns_rows else []
    finally:
        engine.dispose()


def result(check: str, started_at: float, **fields: Any) -> CheckResult:
    """A result with defaults for everything the test does not care about."""
    fields.setdefault("status", CheckStatus.OK)
    return CheckResult(check=check, started_at=started_at, **fields)
