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
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
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


Migration = Callable[[Connection], None]

MIGRATIONS: list[Migration] = [
    _create_result_tables,  # 1
    _create_alerting_tables,  # 2
    _create_deploy_tables,  # 3
    _create_remediation_tables,  # 4
    _create_heartbeat_tables,  # 5
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
