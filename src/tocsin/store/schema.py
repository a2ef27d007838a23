"""Tables of the result store and the migrations that create them.

Times are stored as ``started_at``/``created_at`` DOUBLE seconds since the
epoch — the same unit as :attr:`CheckResult.started_at`, so nothing converts
on the hot path, and a double keeps microseconds for centuries.

``results`` is the history (append-only). ``latest_results`` holds one row
per check, upserted with every batch, so the dashboard's "latest of each
check" is a primary-key read and never scans history. ``details`` is JSON text
(``{"values": {...}, "timings": {...}}``), portable to every database.

Version 2 adds alerting. ``alerts`` holds one row per fingerprint: ``data`` is
the whole record (:meth:`Alert.to_json`), the other columns copy the fields
that queries filter or sort on. ``alert_events`` is the lifecycle history
(append-only). ``deliveries`` is the durable outbox: a notification is written
there before any attempt to send it, and ``key`` (its idempotency key) is
unique, so enqueueing the same notification twice stores it once.
``silences.matchers`` is JSON, ``[[name, op, value], ...]``.

Version 3 adds ``deploy_events``: one row per platform deploy a ``deploy``
check saw, upserted by ``deploy_id`` when its status changes; ``seen_at`` is
when a check first saw it in its current status.

Version 4 adds the remediation audit log. ``remediation_attempts`` holds one
row per attempt, inserted before its action runs and updated as it moves on
(``inputs`` is JSON, redacted by the caller; ``answer`` is capped).
``remediation_disabled`` holds one row per service whose remediation stopped
after a budget was spent, until a person enables it again.

Version 5 adds ``heartbeat_pings``: every ping a ``heartbeat`` check received
(append-only), so that its state survives a restart and its history shows the
body each run sent (capped by the check's ``body_limit``).

Version 6 makes history compact and adds rollups (:mod:`tocsin.store.rollups`).
``raw_results`` replaces ``results``: keyed ``(check_id, started_at)`` without
a rowid (SQLite ``WITHOUT ROWID``, so the key is the table and no index
repeats it), ``status`` a small int (0 ok, 1 failing, 2 error: ok costs no
byte in SQLite), ``latency_us`` integer microseconds, ``message`` and
``details`` NULL when empty — 28 bytes a row on SQLite against 58 before.
``rollup_hours`` holds one row per check and hour: the hour's aggregate,
its latency histogram, and in ``minutes`` its twelve 5-minute aggregates
packed in one blob (NULL once 5-minute retention has passed).
``rollup_days`` holds one row per check and UTC day, so a window of months
reads a few rows per check. Hours and days are counted since the epoch.
``rollup_dirty`` lists the hours whose stored rollups lag their raw results:
the writer folds results in memory and writes rollups every few seconds,
and after a crash these hours are folded again from ``raw_results``.
The migration moves every stored result into ``raw_results`` and its
rollups, then drops ``results``.

Version 7 adds ``reports`` (hourly health reports, SLA and alert reviews, as
JSON) and ``api_tokens`` (read/write API tokens: only a hash of each secret).

Migrations are an ordered list: version ``n`` is ``MIGRATIONS[n - 1]``. Each
runs in its own transaction together with the row that records it in
``schema_version``, so a crash leaves the database at a whole version. To
change the schema, append a function; never edit one that has shipped (once
a later migration alters a table, freeze the version-1 definitions it uses).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Double, nullable=False),
)

checks = Table(
    "checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
)


def _result_columns() -> list[Column[Any]]:
    """The columns a result is stored in, shared by history and latest."""
    return [
        Column("started_at", Double, nullable=False),
        Column("status", String(16), nullable=False),  # CheckStatus.value
        Column("latency_ms", Double, nullable=True),
        Column("code", Integer, nullable=True),
        Column("message", Text, nullable=False),
        Column("details", Text, nullable=True),  # JSON; NULL when values and timings are empty
    ]


results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", Integer, ForeignKey("checks.id"), nullable=False),
    *_result_columns(),
    Index("ix_results_check_started", "check_id", "started_at"),
)

latest_results = Table(
    "latest_results",
    metadata,
    Column("check_id", Integer, ForeignKey("checks.id"), primary_key=True, autoincrement=False),
    *_result_columns(),
)


def _create_result_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[checks, results, latest_results])


alerts = Table(
    "alerts",
    metadata,
    Column("fingerprint", String(1024), primary_key=True),
    Column("check", String(255), nullable=False),
    Column("service", String(255), nullable=True),
    Column("severity", String(8), nullable=False),  # Severity.value
    Column("state", String(16), nullable=False),  # AlertState.value
    Column("fired_at", Double, nullable=True),
    Column("resolved_at", Double, nullable=True),
    Column("updated_at", Double, nullable=False),
    Column("incident_id", String(255), nullable=True),
    Column("data", Text, nullable=False),  # Alert.to_json(): the full record
    Index("ix_alerts_state", "state"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(1024), nullable=False),
    Column("at", Double, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("note", Text, nullable=False),
    Index("ix_alert_events_fingerprint_at", "fingerprint", "at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("service", String(255), nullable=False),
    Column("opened_at", Double, nullable=False),
    Column("closed_at", Double, nullable=True),
    Column("paged_at", Double, nullable=True),
    Column("severity", String(8), nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False),
    Column("channel", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # NotificationKind.value
    Column("severity", String(8), nullable=False),
    Column("status", String(16), nullable=False),  # DeliveryStatus.value
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("sent_at", Double, nullable=True),
    Column("fallback_of", String(512), nullable=True),
    Column("payload", Text, nullable=False),  # Notification.to_json()
    UniqueConstraint("key", name="uq_deliveries_key"),
    Index("ix_deliveries_status_next_attempt", "status", "next_attempt_at"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("matchers", Text, nullable=False),  # JSON [[name, op, value], ...]
    Column("starts_at", Double, nullable=False),
    Column("ends_at", Double, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)


def _create_alerting_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[alerts, alert_events, incidents, deliveries, silences])


deploy_events = Table(
    "deploy_events",
    metadata,
    Column("deploy_id", String(255), primary_key=True),
    Column("service", String(255), nullable=True),
    Column("check", String(255), nullable=False),
    Column("status", String(32), nullable=False),  # DeployStatus.value
    Column("trigger", String(64), nullable=True),
    Column("commit_id", String(255), nullable=True),
    Column("commit_message", Text, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
    Column("seen_at", Double, nullable=False),
    Index("ix_deploy_events_service_created", "service", "created_at"),
)


def _create_deploy_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[deploy_events])


remediation_attempts = Table(
    "remediation_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(255), nullable=False),
    Column("fingerprint", String(1024), nullable=False),
    Column("policy", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("mode", String(16), nullable=False),  # RemediationMode.value
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
    Column("state", String(16), nullable=False),  # AttemptState.value
    Column("inputs", Text, nullable=False),  # JSON, secrets redacted
    Column("answer", Text, nullable=True),
    Column("verification", Text, nullable=True),
    Column("duration_s", Double, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_remediation_attempts_service_policy_started", "service", "policy", "started_at"),
    Index("ix_remediation_attempts_state", "state"),
)

remediation_disabled = Table(
    "remediation_disabled",
    metadata,
    Column("service", String(255), primary_key=True),
    Column("policy", String(255), nullable=False),
    Column("disabled_at", Double, nullable=False),
    Column("reason", Text, nullable=False),
)


def _create_remediation_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[remediation_attempts, remediation_disabled])


heartbeat_pings = Table(
    "heartbeat_pings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # PingKind.value
    Column("at", Double, nullable=False),
    Column("rid", String(255), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("duration_s", Double, nullable=True),
    Column("body", Text, nullable=False),
    Column("truncated", Integer, nullable=False),  # 0/1: the body was cut at body_limit
    Column("method", String(8), nullable=False),
    Column("source", String(255), nullable=False),  # the client's address
    Index("ix_heartbeat_pings_check_at", "check", "at"),
)


def _create_heartbeat_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[heartbeat_pings])


raw_results = Table(
    "raw_results",
    metadata,
    Column("check_id", Integer, primary_key=True, autoincrement=False),
    Column("started_at", Double, primary_key=True),
    Column("status", SmallInteger, nullable=False),  # 0 ok, 1 failing, 2 error
    Column("latency_us", BigInteger, nullable=True),
    Column("code", Integer, nullable=True),
    Column("message", Text, nullable=True),  # NULL when empty
    Column("details", Text, nullable=True),  # JSON; NULL when values and timings are empty
    sqlite_with_rowid=False,
)


def _aggregate_columns() -> list[Column[Any]]:
    """An :class:`~tocsin.store.rollups.Aggregate`; latencies in microseconds."""
    return [
        Column("count", Integer, nullable=False),
        Column("failures", Integer, nullable=False),
        Column("errors", Integer, nullable=False),
        Column("unmeasured", Integer, nullable=False),  # results without a latency
        Column("latency_min", BigInteger, nullable=False),
        Column("latency_max", BigInteger, nullable=False),
        Column("latency_sum", BigInteger, nullable=False),
        Column("histogram", LargeBinary, nullable=False),
    ]


rollup_hours = Table(
    "rollup_hours",
    metadata,
    Column("check_id", Integer, primary_key=True, autoincrement=False),
    Column("hour", Integer, primary_key=True, autoincrement=False),
    *_aggregate_columns(),
    Column("minutes", LargeBinary, nullable=True),
    sqlite_with_rowid=False,
)

rollup_days = Table(
    "rollup_days",
    metadata,
    Column("check_id", Integer, primary_key=True, autoincrement=False),
    Column("day", Integer, primary_key=True, autoincrement=False),
    *_aggregate_columns(),
    sqlite_with_rowid=False,
)

rollup_dirty = Table(
    "rollup_dirty",
    metadata,
    Column("check_id", Integer, primary_key=True, autoincrement=False),
    Column("hour", Integer, primary_key=True, autoincrement=False),
)

# The version-1 table as it was, for the version-6 migration to read and drop.
_results_v1 = Table(
    "results",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("check_id", Integer),
    Column("started_at", Double),
    Column("status", String(16)),
    Column("latency_ms", Double),
    Column("code", Integer),
    Column("message", Text),
    Column("details", Text),
)


def _compact_results_and_rollups(conn: Connection) -> None:
    from tocsin.store.rollups_fold import RollupFolder, status_code

    metadata.create_all(conn, tables=[raw_results, rollup_hours, rollup_days, rollup_dirty])
    old = _results_v1.c
    folder = RollupFolder()
    # Ordered by the new key: the first of equal (check_id, started_at) stays.
    query = select(old.check_id, old.started_at, old.status, old.latency_ms, old.code,
                   old.message, old.details).order_by(old.check_id, old.started_at, old.id)
    batch: list[dict[str, Any]] = []
    last: tuple[int, float] | None = None
    for row in conn.execute(query):
        if (row.check_id, row.started_at) == last:
            continue
        last = (row.check_id, row.started_at)
        latency_us = None if row.latency_ms is None else round(row.latency_ms * 1000)
        status = status_code(row.status)
        batch.append({"check_id": row.check_id, "started_at": row.started_at, "status": status,
                      "latency_us": latency_us, "code": row.code,
                      "message": row.message or None, "details": row.details})
        folder.add(row.check_id, row.started_at, status, latency_us)
        if len(batch) >= 10_000:
            conn.execute(insert(raw_results), batch)
            batch.clear()
    if batch:
        conn.execute(insert(raw_results), batch)
    hours, days = folder.rows()
    if hours:
        conn.execute(insert(rollup_hours), hours)
        conn.execute(insert(rollup_days), days)
    _results_v1.drop(conn)


reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # health, sla, alerts
    Column("period", String(64), nullable=False),  # what it covers: "2026-10", an hour's start
    Column("created_at", Double, nullable=False),
    Column("data", Text, nullable=False),  # JSON: the report's figures
    Index("ix_reports_kind_created", "kind", "created_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(64), primary_key=True),  # the public part of the token
    Column("name", String(255), nullable=False),
    Column("scope", String(16), nullable=False),  # read, write
    Column("hash", String(128), nullable=False),  # of the secret part; the secret is never stored
    Column("created_at", Double, nullable=False),
    Column("last_used_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
)


def _create_report_and_token_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[reports, api_tokens])


Migration = Callable[[Connection], None]

MIGRATIONS: list[Migration] = [
    _create_result_tables,  # 1
    _create_alerting_tables,  # 2
    _create_deploy_tables,  # 3
    _create_remediation_tables,  # 4
    _create_heartbeat_tables,  # 5
    _compact_results_and_rollups,  # 6
    _create_report_and_token_tables,  # 7
]

LATEST_VERSION = len(MIGRATIONS)


def ensure_version_table(conn: Connection) -> None:
    schema_version.create(conn, checkfirst=True)


def current_version(conn: Connection) -> int:
    """The highest version recorded; 0 when none is (or the table does not exist yet)."""
    if not conn.dialect.has_table(conn, schema_version.name):
        return 0
    return int(conn.scalar(select(func.coalesce(func.max(schema_version.c.version), 0))) or 0)


def record_version(conn: Connection, version: int) -> None:
    conn.execute(insert(schema_version).values(version=version, applied_at=time.time()))
