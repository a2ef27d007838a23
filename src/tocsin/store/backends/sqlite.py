"""SQLite: the embedded store of a single Tocsin process.

Every connection gets WAL (readers never block the writer), ``synchronous=NORMAL``
(durable at checkpoints, safe against corruption; a power cut may lose the
last commits, which the monitoring use can afford), a 5 s busy timeout, foreign
keys, and a 64 MiB cap on the WAL file kept between checkpoints.

The ``sqlite3`` module's own transaction handling skips BEGIN before SELECT
and DDL, which would make migrations non-transactional; SQLAlchemy emits
BEGIN instead (the recipe in SQLAlchemy's SQLite dialect docs), and
``BEGIN IMMEDIATE`` for transactions that will write, so a read-then-write
transaction never fails on lock upgrade.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from tocsin.store.backends.on_conflict import on_conflict_hooks
from tocsin.store.base import SchemaError, StoreError, StoreUnavailable
from tocsin.store.sql import WRITE_INTENT, DialectHooks, SQLStore

_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    f"journal_size_limit={64 * 1024 * 1024}",
)

# Primary result codes worth retrying: busy, locked, I/O error, disk full,
# cannot open (a volume not mounted yet), lock protocol error.
_TRANSIENT_CODES = frozenset({5, 6, 10, 13, 14, 15})


def open_sqlite(url: str, *, busy_timeout_ms: int = 5000) -> SQLStore:
    """Open ``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``.

    ``busy_timeout_ms`` is how long a statement waits for another writer's lock
    before failing with :class:`StoreUnavailable`.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError("not a database URL (expected sqlite:///PATH)") from exc
    memory = parsed.database in (None, "", ":memory:")
    if memory:
        # One connection for every thread, or each would see its own empty database.
        engine = create_engine(
            parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        parent = Path(str(parsed.database)).parent
        if not parent.is_dir():
            raise StoreError(
                f"cannot open {url}: directory {parent.resolve()} does not exist"
            )
        # Absolute from here on: the log names the real file, and a later chdir changes nothing.
        parsed = parsed.set(database=str(Path(str(parsed.database)).resolve()))
        url = parsed.render_as_string(hide_password=False)
        engine = create_engine(parsed)
    pragmas = (*_PRAGMAS, f"busy_timeout={int(busy_timeout_ms)}")

    def configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN: see _begin
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
        finally:
            cursor.close()

    event.listen(engine, "connect", configure)
    event.listen(engine, "begin", _begin)
    return SQLStore(
        engine,
        url=url,
        hooks=DialectHooks(
            upsert_latest=_upsert_latest,
            upsert=_upsert,
            insert_or_skip=_insert_or_skip,
            classify_error=_classify,
            serialize=memory,
            checkpoint=_checkpoint,
        ),
    )


def _begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_INTENT, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _checkpoint(engine: Engine) -> None:
    # Outside any transaction (SQLAlchemy's BEGIN would pin a snapshot and stop
    # TRUNCATE from finishing); journal_size_limit then caps what the WAL keeps.
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


_upsert_latest, _upsert, _insert_or_skip = on_conflict_hooks(sqlite_insert)


def _classify(exc: DBAPIError) -> type[StoreError]:
    if exc.connection_invalidated:
        return StoreUnavailable
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _TRANSIENT_CODES:
        return StoreUnavailable
    if "no such table" in str(exc.orig):
        return SchemaError
    return StoreError
