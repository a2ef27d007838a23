"""The ``database`` health check: can the app still run ``SELECT 1``?

It takes what the app already has, and imports the driver only for that kind:

==========================================  =======================================
``database(...)`` given                     how it asks
==========================================  =======================================
SQLAlchemy ``AsyncEngine``                  ``async with engine.connect()``
SQLAlchemy ``Engine``                       ``engine.connect()`` in a thread
asyncpg ``Pool`` / ``Connection``           ``fetchval`` (a pooled connection)
``postgresql://…`` / ``postgres://…`` DSN   a fresh asyncpg connection, closed after
a path, ``Path`` or ``sqlite:///path``      :mod:`sqlite3`, read-only, in a thread
==========================================  =======================================

A SQLite file is opened read-only and never created: a missing file is an
unhealthy check, not a new empty database.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any
from urllib.parse import quote

from tocsin.health.core import CheckFunction
from tocsin.health.threads import BlockingCall

DEFAULT_QUERY = "SELECT 1"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def database(target: object, *, query: str = DEFAULT_QUERY) -> CheckFunction:
    """A check that runs ``query`` on ``target`` (see the module docstring for the kinds)."""
    if isinstance(target, str | os.PathLike):
        return _from_location(os.fspath(target), query)
    module = type(target).__module__
    if module.startswith("sqlalchemy."):
        return _sqlalchemy(target, query)
    if module.startswith("asyncpg."):
        return _asyncpg(target, query)
    raise TypeError(
        f"database() takes a SQLAlchemy engine, an asyncpg pool or connection, a PostgreSQL "
        f"DSN or an SQLite path, not {type(target).__name__}"
    )


def _from_location(location: str | bytes, query: str) -> CheckFunction:
    text = location.decode() if isinstance(location, bytes) else location
    if text.startswith(_POSTGRES_SCHEMES):
        return _asyncpg_dsn(text, query)
    scheme, separator, rest = text.partition(":///")
    if separator and scheme.split("+")[0] == "sqlite":
        return _sqlite_file(rest, query)
    if "://" in text:
        raise ValueError("database(): for a URL other than postgresql:// or sqlite:///, "
                         "pass a SQLAlchemy engine")
    return _sqlite_file(text, query)


def _sqlite_file(path: str, query: str) -> CheckFunction:
    uri = f"file:{quote(path)}?mode=ro"

    def select() -> None:
        import sqlite3

        connection = sqlite3.connect(uri, uri=True, timeout=1.0)
        try:
            connection.execute(query).fetchone()
        finally:
            connection.close()

    call = BlockingCall(select)

    async def sqlite_check() -> None:
        await call()

    return sqlite_check


def _sqlalchemy(engine: Any, query: str) -> CheckFunction:
    from sqlalchemy import text
    from sqlalchemy.engine import Engine

    statement = text(query)
    # Present whenever an AsyncEngine exists: importing it here would pull in asyncio support
    # for apps that never use it.
    async_module = sys.modules.get("sqlalchemy.ext.asyncio")
    if async_module is not None and isinstance(engine, async_module.AsyncEngine):

        async def async_engine_check() -> None:
            async with engine.connect() as connection:
                await connection.execute(statement)

        return async_engine_check
    if isinstance(engine, Engine):

        def select() -> None:
            with engine.connect() as connection:
                connection.execute(statement)

        call = BlockingCall(select)

        async def engine_check() -> None:
            await call()

        return engine_check
    raise TypeError(f"database(): a SQLAlchemy Engine or AsyncEngine, not {type(engine).__name__}")


def _asyncpg(target: Any, query: str) -> CheckFunction:
    if hasattr(target, "acquire"):  # a Pool

        async def pool_check() -> None:
            async with target.acquire() as connection:
                await connection.fetchval(query)

        return pool_check

    async def connection_check() -> None:
        await target.fetchval(query)

    return connection_check


def _asyncpg_dsn(dsn: str, query: str) -> CheckFunction:
    if importlib.util.find_spec("asyncpg") is None:  # say so now, not at the first probe
        raise ModuleNotFoundError("database(): a PostgreSQL DSN needs asyncpg (pip install "
                                  "asyncpg), or pass a SQLAlchemy engine")

    async def dsn_check() -> None:
        import asyncpg  # type: ignore[import-not-found, unused-ignore]

        connection = await asyncpg.connect(dsn)
        try:
            await connection.fetchval(query)
        finally:
            await connection.close()

    return dsn_check
