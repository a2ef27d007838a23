"""`ReportsSQL`: stored reports (hourly health, SLA, alert review) of the SQL store.

A report is its figures as JSON, with its kind and the period it covers;
renderers turn the figures into HTML or PDF when asked, so a stored report is
small and its look can improve without migrating anything. Transactions and
the translation of driver errors are the concrete store's, as in
:mod:`tocsin.store.alerts_sql`.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select

from tocsin.reports.model import StoredReport
from tocsin.store.base import Store
from tocsin.store.schema import reports as reports_table


class ReportsSQL(Store):
    """The report methods of :class:`Store`, over the concrete store's transactions."""

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _translated(self) -> AbstractContextManager[None]:
        """Turns SQLAlchemy and driver exceptions into :class:`StoreError`."""

    def save_report(self, report: StoredReport) -> int:
        with self._translated(), self._transaction(write=True) as conn:
            inserted = conn.execute(insert(reports_table).values(
                kind=report.kind, period=report.period, created_at=report.created_at,
                data=json.dumps(report.data, default=str)))
            key = inserted.inserted_primary_key
            assert key is not None
            return int(key[0])

    def list_reports(self, kind: str, since: float | None = None, until: float | None = None,
                     limit: int = 100) -> list[StoredReport]:
        if limit <= 0:
            return []
        c = reports_table.c
        stmt = select(reports_table).where(c.kind == kind)
        if since is not None:
            stmt = stmt.where(c.created_at >= since)
        if until is not None:
            stmt = stmt.where(c.created_at < until)
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        with self._translated(), self._transaction() as conn:
            return [_to_report(row) for row in conn.execute(stmt)]

    def prune_reports(self, kind: str, before: float) -> int:
        c = reports_table.c
        with self._translated(), self._transaction(write=True) as conn:
            removed = conn.execute(delete(reports_table).where(c.kind == kind,
                                                               c.created_at < before))
            return int(removed.rowcount or 0)


def _to_report(row: Row[Any]) -> StoredReport:
    return StoredReport(kind=row.kind, period=row.period, created_at=row.created_at,
                        data=json.loads(row.data), id=row.id)
