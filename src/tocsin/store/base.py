"""The store: check results and alerting state, one interface, one implementation per database.

Everything above this package (the writer, the web API, SLO maths) talks to a
:class:`Store` and never to SQLAlchemy or a driver. The methods are
synchronous; callers run them in a thread (:class:`~tocsin.store.writer.ResultWriter`
keeps one dedicated thread for writes).

Exceptions::

    StoreError                root of this layer; a database error that retrying will not fix
     ├── StoreUnavailable     transient: locked, disk I/O, disk full, connection lost — retry
     └── SchemaError          the schema is not what this Tocsin expects
                              (database newer than the code, or never migrated)

Driver and SQLAlchemy exceptions are translated at the boundary (see
:mod:`tocsin.store.sql`); none escapes a :class:`Store` method.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from tocsin.alerting.model import (
    Alert,
    AlertEvent,
    AlertState,
    Delivery,
    DeliveryStatus,
    Incident,
    Silence,
)
from tocsin.platforms.events import DeployEvent
from tocsin.probes.base import CheckResult
from tocsin.probes.heartbeat_book import Ping
from tocsin.remediation.audit import RemediationAttempt
from tocsin.remediation.policy import DisabledRemediation
from tocsin.reports.model import StoredReport
from tocsin.store.retention import PruneCounts, Retention
from tocsin.store.rollups import Rollup, Summary


class StoreError(Exception):
    """The store failed; see the subclasses for whether to retry."""


class StoreUnavailable(StoreError):
    """A transient failure (locked, I/O, connection lost): the same call may succeed later."""


class SchemaError(StoreError):
    """The database schema does not match this version of Tocsin."""


class TokenScope(enum.StrEnum):
    """What an API token may do: ``write`` implies ``read``."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class APIToken:
    """A stored API token: its public ``id`` and a hash of its secret (never the secret)."""

    id: str
    name: str
    scope: TokenScope
    hash: str
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None


class Store(ABC):
    """Where check results and alerting state are kept.

    Results: history per check, and the latest result of each. Alerting: the
    state of every alert and its lifecycle events, incidents, the delivery
    outbox, and silences. Deploys: every platform deploy a check saw. Heartbeats:
    every ping received.
    Remediation: the audit log of attempts, and the services disabled after
    a spent budget.
    """

    @property
    @abstractmethod
    def url(self) -> str:
        """The database URL, with any password hidden."""

    @abstractmethod
    def migrate(self) -> int:
        """Apply the pending migrations, each in its own transaction; return the schema version.

        Idempotent: on an up-to-date database it changes nothing.
        Raises :class:`SchemaError` when the database is newer than this code.
        """

    @abstractmethod
    def schema_version(self) -> int:
        """The version recorded in the database; 0 for an empty database."""

    @abstractmethod
    def write_results(self, results: Sequence[CheckResult]) -> None:
        """Append ``results`` to history and update the latest result of each check.

        One transaction for the whole batch: either every result is stored or
        none is. A result older than the stored latest of its check goes to
        history only. A result is its check and ``started_at``: one already
        stored (a retried batch) is stored and counted in rollups once.
        Rollups (:meth:`summary`, :meth:`rollups`) count every stored result.
        """

    @abstractmethod
    def latest_results(self, checks: Collection[str] | None = None) -> dict[str, CheckResult]:
        """The newest result of each check (of every check when ``checks`` is None), by name.

        A check that has no result yet is absent from the answer.
        """

    @abstractmethod
    def history(
        self,
        check: str,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[CheckResult]:
        """Results of ``check`` with ``since <= started_at < until``, newest first.

        At most ``limit`` of them: the newest ``limit``.
        """

    # -- rollups and retention ---------------------------------------------------

    @abstractmethod
    def summary(self, checks: Collection[str], since: float,
                until: float, *, latency: bool = True) -> dict[str, Summary]:
        """Counts, uptime and latency (mean, min, max, p50/p95/p99) of each of ``checks``.

        Answered from rollups, never from raw results: the window is the whole
        hours that start in ``[since, until)`` (days inside it read from the daily
        tier), so it may start up to an hour after ``since``. Every asked check
        is in the answer; one without results has ``count`` 0 and ``uptime`` None.
        Percentiles are within :data:`~tocsin.store.rollups.RELATIVE_ERROR` (4.33 %).
        With ``latency=False`` only counts and uptime are read (no histograms: a
        fraction of the time), and the percentiles are None.
        """

    @abstractmethod
    def daily_summaries(self, checks: Collection[str], first_day: int,
                        end_day: int) -> dict[int, dict[str, Summary]]:
        """Day number (epoch seconds // 86400) → check → its counts and uptime that day.

        Days in ``[first_day, end_day)`` from the daily tier in one query, for
        status bars: latency fields are None, and a check without results that
        day is absent (as is a day without any).
        """

    @abstractmethod
    def rollups(self, check: str, since: float, until: float, step: int) -> list[Rollup]:
        """The series of ``check`` in buckets of ``step`` seconds (300, 3600 or 86400).

        Buckets starting in ``[since, until)``, oldest first; empty buckets are
        absent. 5-minute buckets exist until 5-minute retention, hourly and
        daily ones until hourly retention. A daily series over a month is
        ``rollups(check, t, t + 30 * 86400, 86400)``. Raises ValueError for
        another step.
        """

    @abstractmethod
    def prune(self, now: float, retention: Retention | None = None, *, batch: int = 2000,
              pause: float = 0.0) -> PruneCounts:
        """Remove what ``retention`` (the defaults when None) no longer keeps at ``now``.

        Raw results started before ``now - retention.raw``; the 5-minute detail of
        hours that ended before ``now - retention.rollups_5m``; hourly and daily
        rollups that ended before ``now - retention.rollups_1h``. At most
        ``batch`` rows per transaction, sleeping ``pause`` seconds between
        them, so writers interleave. Alerts, incidents, deliveries, deploys and
        the remediation audit log are never pruned.
        """

    @abstractmethod
    def checkpoint(self) -> None:
        """Move the write-ahead log into the database and truncate it (SQLite).

        A no-op where the database manages its own log.
        """

    # -- alerting -------------------------------------------------------------

    @abstractmethod
    def save_alerting(
        self,
        alerts: Sequence[Alert] = (),
        events: Sequence[AlertEvent] = (),
        incidents: Sequence[Incident] = (),
        deliveries: Sequence[Delivery] = (),
    ) -> list[Delivery]:
        """Store one step of the alert engine in one transaction: all of it or none.

        Alerts are upserted by fingerprint and incidents by id; events are
        appended. A delivery whose key is already stored (or appears earlier in
        ``deliveries``) is skipped, so enqueueing the same notification again
        is harmless. Returns the deliveries that were inserted, as copies with
        ``id`` set; the arguments are not changed.
        """

    @abstractmethod
    def load_alerts(self, states: Collection[AlertState] | None = None) -> list[Alert]:
        """Every stored alert in one of ``states`` (all of them when None), by fingerprint."""

    @abstractmethod
    def get_alert(self, fingerprint: str) -> Alert | None:
        """The alert with this fingerprint; None when there is none."""

    @abstractmethod
    def list_alerts(
        self,
        state: AlertState | None = None,
        service: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Alert], int]:
        """One page of alerts, most recently updated first, and how many match in all."""

    @abstractmethod
    def alert_events(
        self, fingerprint: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[AlertEvent]:
        """Lifecycle events (of one alert, or of all) with ``at >= since``, oldest first.

        At most ``limit`` of them: the oldest ``limit``, so that a reader pages
        forward by passing the last ``at`` it saw as ``since``.
        """

    @abstractmethod
    def load_incidents(self, open_only: bool = True) -> list[Incident]:
        """Incidents (only those not closed, by default), oldest first."""

    @abstractmethod
    def due_deliveries(self, now: float, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose ``next_attempt_at <= now``, the longest-waiting first."""

    @abstractmethod
    def next_delivery_at(self) -> float | None:
        """The earliest ``next_attempt_at`` of a pending delivery; None when none is pending."""

    @abstractmethod
    def update_delivery(self, delivery: Delivery) -> None:
        """Store the outcome of an attempt: status, attempts, next attempt, error, sent_at.

        The delivery is found by its key. Raises :class:`StoreError` when no
        delivery has that key.
        """

    @abstractmethod
    def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        channel: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Delivery], int]:
        """One page of deliveries, newest first, and how many match in all."""

    @abstractmethod
    def get_delivery(self, key: str) -> Delivery | None:
        """The delivery with this idempotency key; None when there is none."""

    @abstractmethod
    def add_silence(self, silence: Silence) -> None:
        """Store ``silence``, replacing a stored one with the same id (an edit)."""

    @abstractmethod
    def list_silences(self, include_expired_after: float | None = None) -> list[Silence]:
        """Silences by start time: all of them, or those with ``ends_at >= include_expired_after``.

        ``list_silences(now - retention)`` gives the pending, the active and the
        recently expired.
        """

    @abstractmethod
    def get_silence(self, silence_id: str) -> Silence | None:
        """The silence with this id; None when there is none."""

    @abstractmethod
    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence at ``now`` (Alertmanager's "delete"); False when the id is unknown.

        An active silence ends now; a pending one starts and ends now; an
        expired one keeps its times.
        """

    # -- deploys ---------------------------------------------------------------

    @abstractmethod
    def record_deploys(self, events: Sequence[DeployEvent]) -> None:
        """Store the deploys checks saw, one transaction for all: upserted by ``deploy_id``.

        A stored deploy is replaced (its status changed); within ``events`` the
        last event of a deploy wins.
        """

    @abstractmethod
    def list_deploys(self, service: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[DeployEvent]:
        """Deploys (of one service, or of all) created at or after ``since``, newest first."""

    # -- reports ----------------------------------------------------------------

    @abstractmethod
    def save_report(self, report: StoredReport) -> int:
        """Store a report (its ``id`` is ignored); return its new id."""

    @abstractmethod
    def list_reports(self, kind: str, since: float | None = None, until: float | None = None,
                     limit: int = 100) -> list[StoredReport]:
        """Reports of ``kind`` created in ``[since, until)``, newest first."""

    @abstractmethod
    def prune_reports(self, kind: str, before: float) -> int:
        """Remove the reports of ``kind`` created before ``before``; return how many."""

    # -- heartbeats --------------------------------------------------------------

    @abstractmethod
    def record_pings(self, pings: Sequence[Ping]) -> None:
        """Append heartbeat pings, one transaction for all."""

    @abstractmethod
    def list_pings(self, check: str, since: float | None = None,
                   limit: int = 100) -> list[Ping]:
        """Pings of heartbeat ``check`` received at or after ``since``, newest first."""

    # -- remediation -----------------------------------------------------------

    @abstractmethod
    def add_attempt(self, attempt: RemediationAttempt) -> int:
        """Append ``attempt`` to the audit log (its ``id`` is ignored); return its new id."""

    @abstractmethod
    def update_attempt(self, attempt: RemediationAttempt) -> None:
        """Store the new state of a stored attempt, found by ``id``.

        Raises :class:`StoreError` when ``id`` is None or no attempt has it.
        """

    @abstractmethod
    def list_attempts(self, service: str | None = None, since: float | None = None,
                      limit: int = 100, offset: int = 0) -> tuple[list[RemediationAttempt], int]:
        """One page of attempts (of one service, or of all) started at or after ``since``,
        newest first, and how many match in all."""

    @abstractmethod
    def attempts_since(self, service: str, policy: str,
                       since: float) -> list[RemediationAttempt]:
        """Attempts of ``policy`` on ``service`` started at or after ``since``, oldest first."""

    @abstractmethod
    def unfinished_attempts(self) -> list[RemediationAttempt]:
        """Attempts still started, acted or verifying (to resume after a crash), oldest first."""

    @abstractmethod
    def disable_remediation(self, service: str, policy: str, reason: str, at: float) -> None:
        """Stop remediating ``service`` until :meth:`enable_remediation`.

        ``policy`` is the one that spent its budget. Disabling a disabled service keeps
        the first record.
        """

    @abstractmethod
    def enable_remediation(self, service: str) -> bool:
        """Let remediation act on ``service`` again; False when it was not disabled."""

    @abstractmethod
    def disabled_services(self) -> dict[str, DisabledRemediation]:
        """Every service whose remediation is disabled, by service name."""

    @abstractmethod
    def add_api_token(self, token: APIToken) -> None:
        """Store a new API token; a token with the same id is a :class:`StoreError`."""

    @abstractmethod
    def get_api_token(self, token_id: str) -> APIToken | None:
        """One token by id, revoked or not."""

    @abstractmethod
    def list_api_tokens(self) -> list[APIToken]:
        """Every token, revoked ones included, oldest first."""

    @abstractmethod
    def count_active_api_tokens(self) -> int:
        """How many tokens are not revoked."""

    @abstractmethod
    def revoke_api_token(self, token_id: str, at: float) -> bool:
        """Revoke a token; False when there is no such token or it was already revoked."""

    @abstractmethod
    def touch_api_token(self, token_id: str, at: float) -> None:
        """Record that a token was used at ``at``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""
