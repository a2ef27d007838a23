"""PostgreSQL: the shared store of one or more Tocsin processes, through psycopg 3.

``postgresql://tocsin@db.example:5432/tocsin`` (``postgresql+psycopg://`` too).
The password is, first found wins: the one in the URL (the config's ``${VAR}``
interpolation can put it there), ``TOCSIN_DB_PASSWORD``, the contents of the
file ``TOCSIN_DB_PASSWORD_FILE`` names, and else libpq's own ``PGPASSWORD`` or
``~/.pgpass``. It is handed to the driver apart from the URL, so it needs no
URL escaping, and it is never shown: :attr:`SQLStore.url` hides it, and libpq's
messages never hold it.

The pool keeps up to 5 connections and opens 5 more under load; each is pinged
before use, so a server restart costs one failed ping per pooled connection
and not a failed write. While the server is down every call fails with
:class:`StoreUnavailable` and the pool reconnects once it is back. Connecting
times out after 5 s, and TCP keepalives drop a connection whose server has
gone silent (a network partition) after about 25 s, instead of leaving a
query waiting forever; no statement timeout, so a long migration may run.

Migrations take an advisory lock, so that Tocsins starting together against
one database apply each migration once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import URL, Connection, create_engine, make_url, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import ArgumentError, DBAPIError

from tocsin.store.backends.on_conflict import on_conflict_hooks
from tocsin.store.base import SchemaError, StoreError, StoreUnavailable
from tocsin.store.sql import DialectHooks, SQLStore

PASSWORD_ENV = "TOCSIN_DB_PASSWORD"
DRIVER = "psycopg"
POOL_SIZE = 5
MAX_OVERFLOW = 5
CONNECT_TIMEOUT_S = 5

# libpq settings for every connection; see the module docstring.
_CONNECT_ARGS: dict[str, object] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "application_name": "tocsin",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,  # ms: unacknowledged writes to a vanished server
}

# The key of the advisory lock that serialises migrations: any number, the
# same in every Tocsin.
_MIGRATION_LOCK = 7_062_351

# SQLSTATE classes and codes worth retrying: connection exceptions (08),
# insufficient resources (53: too many connections, disk full, out of memory),
# operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03
# cannot connect now, 57014 query cancelled), serialization failure and
# deadlock (40001, 40P01), lock not available (55P03), system I/O error (58030).
_TRANSIENT_CLASSES = ("08", "53", "57P")
_TRANSIENT_CODES = frozenset({"40001", "40P01", "55P03", "57014", "58030"})
# Missing table, column or schema: the database was not migrated (or by an older Tocsin).
_SCHEMA_CODES = frozenset({"42P01", "42703", "3F000"})
# A failed connection carries no SQLSTATE, only libpq's message: these say that
# retrying cannot help. Anything else there (refused, timed out, starting up,
# too many clients) is transient.
_PERMANENT_CONNECT_ERRORS = (
    "authentication failed",  # password, or the role does not exist
    "no pg_hba.conf entry",
    "does not exist",  # database or role
    "password is required",
    "permission denied",
)


def open_postgresql(url: str, *, env: Mapping[str, str] | None = None) -> SQLStore:
    """Open ``postgresql://USER@HOST:PORT/DATABASE`` with a connection pool.

    ``env`` is where ``TOCSIN_DB_PASSWORD`` (or ``…_FILE``) is looked up;
    :data:`os.environ` by default. Nothing connects yet: the first call does.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError("not a database URL (expected postgresql://USER@HOST:PORT/DB)") from exc
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername not in ("postgresql", f"postgresql+{DRIVER}"):
        raise StoreError(f"unsupported PostgreSQL driver in {shown}: use postgresql://")
    if not parsed.database:
        raise StoreError(f"no database named in {shown}: use postgresql://USER@HOST:PORT/DB")
    connect_args = dict(_CONNECT_ARGS)
    password = _password(parsed, os.environ if env is None else env)
    if password is not None:
        connect_args["password"] = password
    try:
        engine = create_engine(
            parsed.set(drivername=f"postgresql+{DRIVER}", password=None),
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_timeout=CONNECT_TIMEOUT_S,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    except ImportError as exc:
        raise StoreError(
            "PostgreSQL storage needs the psycopg driver: pip install 'tocsin[postgresql]'"
        ) from exc
    return SQLStore(
        engine,
        url=url,
        hooks=DialectHooks(
            upsert_latest=_upsert_latest,
            upsert=_upsert,
            insert_or_skip=_insert_or_skip,
            classify_error=_classify,
            lock_schema=_lock_schema,
        ),
    )


def _password(parsed: URL, env: Mapping[str, str]) -> str | None:
    if parsed.password is not None:
        return str(parsed.password)
    if env.get(PASSWORD_ENV):
        return env[PASSWORD_ENV]
    file_name = env.get(f"{PASSWORD_ENV}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(
                f"cannot read {PASSWORD_ENV}_FILE {file_name!r}: {exc.__class__.__name__}"
            ) from None
    return None  # libpq looks at PGPASSWORD and ~/.pgpass itself


def _lock_schema(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


_upsert_latest, _upsert, _insert_or_skip = on_conflict_hooks(pg_insert)


def _classify(exc: DBAPIError) -> type[StoreError]:
    if exc.connection_invalidated:
        return StoreUnavailable
    code = getattr(exc.orig, "sqlstate", None)
    if isinstance(code, str):
        if code.startswith(_TRANSIENT_CLASSES) or code in _TRANSIENT_CODES:
            return StoreUnavailable
        if code in _SCHEMA_CODES:
            return SchemaError
        return StoreError
    if type(exc.orig).__name__ in ("OperationalError", "InterfaceError"):
        message = str(exc.orig)
        if any(marker in message for marker in _PERMANENT_CONNECT_ERRORS):
            return StoreError
        return StoreUnavailable
    return StoreError
