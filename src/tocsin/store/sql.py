"""`SQLStore`: the :class:`Store` in portable SQLAlchemy Core.

Every backend is this class plus a few :class:`DialectHooks` — the pieces SQL
does not say portably (upserts, insert-unless-present, which driver errors are
transient). A backend module builds the engine and the hooks; nothing here
names a database. The alerting methods live in :mod:`tocsin.store.alerts_sql`,
the deploy events in :mod:`tocsin.store.deploys_sql`, heartbeat pings in
:mod:`tocsin.store.heartbeats_sql`, the remediation audit log in
:mod:`tocsin.store.remediation_sql`, API tokens in :mod:`tocsin.store.tokens_sql`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Insert,
    Row,
    Select,
    Table,
    insert,
    make_url,
    select,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import schema
from tocsin.store.alerts_sql import AlertingSQL
from tocsin.store.base import SchemaError, StoreError
from tocsin.store.deploys_sql import DeploysSQL
from tocsin.store.heartbeats_sql import HeartbeatsSQL
from tocsin.store.remediation_sql import RemediationSQL
from tocsin.store.reports_sql import ReportsSQL
from tocsin.store.rollups_fold import STATUS_CODES, STATUSES
from tocsin.store.rollups_prune import PruneSQL
from tocsin.store.rollups_sql import RollupsSQL
from tocsin.store.schema import checks, latest_results, raw_results
from tocsin.store.tokens_sql import TokensSQL

#: Execution option set on connections whose transaction will write. A backend
#: whose locks upgrade badly (SQLite) may take the write lock at BEGIN.
WRITE_INTENT = "tocsin_write_intent"


@dataclass(frozen=True, slots=True)
class DialectHooks:
    """What a backend supplies beyond its engine."""

    #: Builds the INSERT into ``latest_results`` that, on a conflicting check_id,
    #: replaces the row only when the new ``started_at`` is not older.
    upsert_latest: Callable[[Table], Executable]
    #: Builds the INSERT into a table that, on a conflicting primary key,
    #: replaces every other column of the stored row.
    upsert: Callable[[Table], Executable]
    #: Builds the INSERT into a table that skips a row whose named columns
    #: (a unique constraint) match a stored row.
    insert_or_skip: Callable[[Table, Sequence[str]], Insert]
    #: Which :class:`StoreError` a driver error becomes.
    classify_error: Callable[[DBAPIError], type[StoreError]]
    #: One connection shared by every thread (SQLite ``:memory:``): serialise use.
    serialize: bool = False
    #: Called first in each migration transaction to keep other migrators out
    #: until it commits; None where the write transaction already does (SQLite).
    lock_schema: Callable[[Connection], None] | None = None
    #: Empties the write-ahead log into the database (SQLite); None where the
    #: server manages its own log.
    checkpoint: Callable[[Engine], None] | None = None


def describe(exc: DBAPIError) -> str:
    """The driver's message without the SQL and parameters SQLAlchemy adds."""
    return f"{type(exc.orig).__name__}: {exc.orig}"


class SQLStore(AlertingSQL, DeploysSQL, HeartbeatsSQL, RemediationSQL, ReportsSQL, RollupsSQL,
               PruneSQL, TokensSQL):
    """A :class:`Store` over one SQLAlchemy engine."""

    def __init__(self, engine: Engine, *, url: str, hooks: DialectHooks) -> None:
        """``url`` is what the user wrote; it is shown (password hidden), not parsed."""
        self._engine = engine
        parsed = make_url(url)
        self._url = url if parsed.password is None else parsed.render_as_string(hide_password=True)
        self._hooks = hooks
        self._upsert_latest = hooks.upsert_latest(latest_results)
        self._check_ids: dict[str, int] = {}
        self._lock: AbstractContextManager[Any] = (
            threading.RLock() if hooks.serialize else nullcontext()
        )
        self._init_rollups()

    @property
    def url(self) -> str:
        return self._url

    @property
    def engine(self) -> Engine:
        """The engine, for tools that work on whole tables (``tocsin db stats``, export/import)."""
        return self._engine

    # -- schema ---------------------------------------------------------------

    def migrate(self) -> int:
        with self._translated():
            with self._transaction(write=True) as conn:
                self._lock_schema(conn)
                schema.ensure_version_table(conn)
            while True:
                # One transaction per migration, re-reading the version inside
                # it: a concurrent migrator may have applied this one already.
                with self._transaction(write=True) as conn:
                    self._lock_schema(conn)
                    version = self._checked_version(conn)
                    if version == schema.LATEST_VERSION:
                        return version
                    schema.MIGRATIONS[version](conn)
                    schema.record_version(conn, version + 1)

    def schema_version(self) -> int:
        with self._translated(), self._transaction() as conn:
            return schema.current_version(conn)

    def _lock_schema(self, conn: Connection) -> None:
        if self._hooks.lock_schema is not None:
            self._hooks.lock_schema(conn)

    def _checked_version(self, conn: Connection) -> int:
        version = schema.current_version(conn)
        if version > schema.LATEST_VERSION:
            raise SchemaError(
                f"database {self.url} is at schema version {version}, but this Tocsin "
                f"knows versions up to {schema.LATEST_VERSION}: upgrade Tocsin, or point "
                "it at another database"
            )
        return version

    # -- writing --------------------------------------------------------------

    def write_results(self, results_: Sequence[CheckResult]) -> None:
        if not results_:
            return
        with self._translated():
            ids = self._ids_for({r.check for r in results_})
            # A result is its (check, started_at): the first of equal ones is kept.
            unique: dict[tuple[int, float], dict[str, Any]] = {}
            newest: dict[int, CheckResult] = {}
            for result in results_:
                check_id = ids[result.check]
                key = (check_id, result.started_at)
                if key not in unique:
                    unique[key] = _to_raw_row(check_id, result)
                held = newest.get(check_id)
                if held is None or result.started_at >= held.started_at:
                    newest[check_id] = result
            rows = list(unique.values())
            latest = [_to_row(check_id, r) for check_id, r in newest.items()]
            with self.rollup_lock:
                try:
                    with self._transaction(write=True) as conn:
                        self._store_results(conn, rows)
                        self._executemany(conn, self._upsert_latest, latest)
                except IntegrityError:
                    # Some are stored already (a batch retried after a lost commit
                    # acknowledgement): store the others, count each result once.
                    self._forget_rollups()
                    try:
                        with self._transaction(write=True) as conn:
                            rows = self._unstored(conn, rows)
                            if rows:
                                self._store_results(conn, rows)
                            self._executemany(conn, self._upsert_latest, latest)
                    except BaseException:
                        self._forget_rollups()
                        raise
                except BaseException:
                    self._forget_rollups()
                    raise

    def _ids_for(self, names: set[str]) -> dict[str, int]:
        missing = names.difference(self._check_ids)
        if missing:
            self._load_ids(missing)
            missing.difference_update(self._check_ids)
        if missing:
            self._insert_checks(sorted(missing))
            self._load_ids(missing)
            unknown = missing.difference(self._check_ids)
            if unknown:
                raise StoreError(f"could not register checks {sorted(unknown)}")
        return self._check_ids

    def _load_ids(self, names: Collection[str]) -> None:
        with self._transaction() as conn:
            found = conn.execute(select(checks.c.name, checks.c.id).where(checks.c.name.in_(names)))
            self._check_ids.update({name: id_ for name, id_ in found})

    def _insert_checks(self, names: Sequence[str]) -> None:
        now = time.time()
        try:
            with self._transaction(write=True) as conn:
                conn.execute(insert(checks), [{"name": n, "created_at": now} for n in names])
        except IntegrityError:
            # Another writer registered some of these names first; theirs are as good
            # as ours. Register the rest one by one.
            for name in names:
                try:
                    with self._transaction(write=True) as conn:
                        conn.execute(insert(checks).values(name=name, created_at=now))
                except IntegrityError:
                    pass

    # -- reading --------------------------------------------------------------

    def latest_results(self, checks_: Collection[str] | None = None) -> dict[str, CheckResult]:
        stmt = _select_results(latest_results)
        if checks_ is not None:
            wanted = set(checks_)
            if not wanted:
                return {}
            stmt = stmt.where(checks.c.name.in_(wanted))
        with self._translated(), self._transaction() as conn:
            found = [_to_result(row) for row in conn.execute(stmt)]
        return {r.check: r for r in found}

    def history(
        self,
        check: str,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[CheckResult]:
        if limit <= 0:
            return []
        table = raw_results
        stmt = select(checks.c.name, table.c.started_at, table.c.status, table.c.latency_us,
                      table.c.code, table.c.message, table.c.details
                      ).join_from(table, checks, table.c.check_id == checks.c.id
                                  ).where(checks.c.name == check)
        if since is not None:
            stmt = stmt.where(table.c.started_at >= since)
        if until is not None:
            stmt = stmt.where(table.c.started_at < until)
        stmt = stmt.order_by(table.c.started_at.desc()).limit(limit)
        with self._translated(), self._transaction() as conn:
            return [_raw_to_result(row) for row in conn.execute(stmt)]

    def close(self) -> None:
        try:
            with self._translated():
                self._flush_rollups()
        finally:
            self._engine.dispose()

    # -- plumbing -------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        with self._lock, self._engine.connect() as conn:
            if write:
                conn.execution_options(**{WRITE_INTENT: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn SQLAlchemy and driver exceptions into this layer's."""
        try:
            yield
        except DBAPIError as exc:
            raise self._hooks.classify_error(exc)(describe(exc)) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc


def _select_results(table: Table) -> Select[Any]:
    return select(
        checks.c.name,
        table.c.started_at,
        table.c.status,
        table.c.latency_ms,
        table.c.code,
        table.c.message,
        table.c.details,
    ).join_from(table, checks, table.c.check_id == checks.c.id)


def _details(result: CheckResult) -> str | None:
    if not (result.values or result.timings or result.details):
        return None
    payload: dict[str, Any] = {}
    if result.values:
        payload["values"] = dict(result.values)
    if result.timings:
        payload["timings"] = dict(result.timings)
    if result.details:
        payload["details"] = dict(result.details)
    return json.dumps(payload, default=str)


def _to_raw_row(check_id: int, result: CheckResult) -> dict[str, Any]:
    latency = result.latency_ms
    return {
        "check_id": check_id,
        "started_at": result.started_at,
        "status": STATUS_CODES[result.status],
        "latency_us": None if latency is None else round(latency * 1000),
        "code": result.code,
        "message": result.message or None,
        "details": _details(result),
    }


def _raw_to_result(row: Any) -> CheckResult:
    details = json.loads(row.details) if row.details else {}
    return CheckResult(
        check=row.name,
        status=STATUSES[row.status],
        started_at=row.started_at,
        latency_ms=None if row.latency_us is None else row.latency_us / 1000,
        message=row.message or "",
        code=row.code,
        values=details.get("values", {}),
        timings=details.get("timings", {}),
        details=details.get("details", {}),
    )


def _to_row(check_id: int, result: CheckResult) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if result.values:
        payload["values"] = dict(result.values)
    if result.timings:
        payload["timings"] = dict(result.timings)
    if result.details:
        payload["details"] = dict(result.details)
    details = json.dumps(payload, default=str) if payload else None
    return {
        "check_id": check_id,
        "started_at": result.started_at,
        "status": result.status.value,
        "latency_ms": result.latency_ms,
        "code": result.code,
        "message": result.message,
        "details": details,
    }


def _to_result(row: Row[Any]) -> CheckResult:
    details = json.loads(row.details) if row.details else {}
    return CheckResult(
        check=row.name,
        status=CheckStatus(row.status),
        started_at=row.started_at,
        latency_ms=row.latency_ms,
        message=row.message,
        code=row.code,
        values=details.get("values", {}),
        timings=details.get("timings", {}),
        details=details.get("details", {}),
    )
