"""`AlertingSQL`: the alerting half of :class:`~tocsin.store.sql.SQLStore`.

Alerts, their lifecycle events, incidents, the delivery outbox and silences,
in portable SQLAlchemy Core. The two statements SQL does not say portably —
replace-or-insert by primary key, and insert-unless-the-key-exists — come from
the backend's :class:`~tocsin.store.sql.DialectHooks`. Transactions and the
translation of driver errors are the concrete store's (``_transaction`` and
``_translated``), so this class names no database.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    case,
    func,
    insert,
    select,
    update,
)

from tocsin.alerting.model import (
    Alert,
    AlertEvent,
    AlertState,
    Delivery,
    DeliveryStatus,
    Incident,
    Silence,
)
from tocsin.store.alerts_rows import (
    alert_row,
    delivery_row,
    event_row,
    incident_row,
    select_deliveries,
    silence_row,
    to_delivery,
    to_event,
    to_incident,
    to_silence,
)
from tocsin.store.base import Store, StoreError
from tocsin.store.schema import alert_events as event_table
from tocsin.store.schema import alerts as alert_table
from tocsin.store.schema import deliveries as delivery_table
from tocsin.store.schema import incidents as incident_table
from tocsin.store.schema import silences as silence_table

if TYPE_CHECKING:
    from tocsin.store.sql import DialectHooks


class AlertingSQL(Store):
    """The alerting methods of :class:`Store`, over the concrete store's transactions."""

    _hooks: DialectHooks

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _translated(self) -> AbstractContextManager[None]:
        """Turns SQLAlchemy and driver exceptions into :class:`StoreError`."""

    # -- writing --------------------------------------------------------------

    def save_alerting(
        self,
        alerts: Sequence[Alert] = (),
        events: Sequence[AlertEvent] = (),
        incidents: Sequence[Incident] = (),
        deliveries: Sequence[Delivery] = (),
    ) -> list[Delivery]:
        # Serialise before the transaction: a value that cannot be stored fails
        # here, without holding the write lock.
        alert_rows = [alert_row(a) for a in alerts]
        event_rows = [event_row(e) for e in events]
        incident_rows = [incident_row(i) for i in incidents]
        delivery_rows = [delivery_row(d) for d in deliveries]
        if not (alert_rows or event_rows or incident_rows or delivery_rows):
            return []
        inserted: list[Delivery] = []
        with self._translated(), self._transaction(write=True) as conn:
            if alert_rows:
                conn.execute(self._hooks.upsert(alert_table), alert_rows)
            if event_rows:
                conn.execute(insert(event_table), event_rows)
            if incident_rows:
                conn.execute(self._hooks.upsert(incident_table), incident_rows)
            if delivery_rows:
                # One row at a time: RETURNING tells which were new, and a key
                # repeated within this batch is skipped like a stored one.
                stmt = self._hooks.insert_or_skip(delivery_table, ["key"])
                stmt = stmt.returning(delivery_table.c.id)
                for delivery, row in zip(deliveries, delivery_rows, strict=True):
                    new_id = conn.execute(stmt, row).scalar_one_or_none()
                    if new_id is not None:
                        inserted.append(replace(delivery, id=new_id))
        return inserted

    def update_delivery(self, delivery: Delivery) -> None:
        stmt = (
            update(delivery_table)
            .where(delivery_table.c.key == delivery.key)
            .values(
                status=delivery.status.value,
                attempts=delivery.attempts,
                next_attempt_at=delivery.next_attempt_at,
                last_error=delivery.last_error,
                sent_at=delivery.sent_at,
            )
        )
        with self._translated(), self._transaction(write=True) as conn:
            found = conn.execute(stmt).rowcount
        if not found:
            raise StoreError(f"no delivery with key {delivery.key!r}")

    def add_silence(self, silence: Silence) -> None:
        row = silence_row(silence)
        with self._translated(), self._transaction(write=True) as conn:
            conn.execute(self._hooks.upsert(silence_table), [row])

    def expire_silence(self, silence_id: str, now: float) -> bool:
        # One UPDATE, no read: min() of two values spelled portably.
        c = silence_table.c
        stmt = (
            update(silence_table)
            .where(c.id == silence_id)
            .values(
                starts_at=case((c.starts_at > now, now), else_=c.starts_at),
                ends_at=case((c.ends_at > now, now), else_=c.ends_at),
            )
        )
        with self._translated(), self._transaction(write=True) as conn:
            return bool(conn.execute(stmt).rowcount)

    # -- reading --------------------------------------------------------------

    def load_alerts(self, states: Collection[AlertState] | None = None) -> list[Alert]:
        stmt = select(alert_table.c.data).order_by(alert_table.c.fingerprint)
        if states is not None:
            wanted = {s.value for s in states}
            if not wanted:
                return []
            stmt = stmt.where(alert_table.c.state.in_(wanted))
        with self._translated(), self._transaction() as conn:
            return [Alert.from_json(data) for data in conn.scalars(stmt)]

    def get_alert(self, fingerprint: str) -> Alert | None:
        stmt = select(alert_table.c.data).where(alert_table.c.fingerprint == fingerprint)
        with self._translated(), self._transaction() as conn:
            data = conn.scalar(stmt)
        return None if data is None else Alert.from_json(data)

    def list_alerts(
        self,
        state: AlertState | None = None,
        service: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Alert], int]:
        where: list[ColumnElement[bool]] = []
        if state is not None:
            where.append(alert_table.c.state == state.value)
        if service is not None:
            where.append(alert_table.c.service == service)
        page = (
            select(alert_table.c.data)
            .where(*where)
            .order_by(alert_table.c.updated_at.desc(), alert_table.c.fingerprint)
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
        with self._translated(), self._transaction() as conn:
            found = [Alert.from_json(data) for data in conn.scalars(page)]
            total = _count(conn, alert_table, where)
        return found, total

    def alert_events(
        self, fingerprint: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[AlertEvent]:
        if limit <= 0:
            return []
        stmt = select(event_table)
        if fingerprint is not None:
            stmt = stmt.where(event_table.c.fingerprint == fingerprint)
        if since is not None:
            stmt = stmt.where(event_table.c.at >= since)
        stmt = stmt.order_by(event_table.c.at, event_table.c.id).limit(limit)
        with self._translated(), self._transaction() as conn:
            return [to_event(row) for row in conn.execute(stmt)]

    def load_incidents(self, open_only: bool = True) -> list[Incident]:
        stmt = select(incident_table).order_by(incident_table.c.opened_at, incident_table.c.id)
        if open_only:
            stmt = stmt.where(incident_table.c.closed_at.is_(None))
        with self._translated(), self._transaction() as conn:
            return [to_incident(row) for row in conn.execute(stmt)]

    def due_deliveries(self, now: float, limit: int = 100) -> list[Delivery]:
        if limit <= 0:
            return []
        stmt = (
            select_deliveries()
            .where(
                delivery_table.c.status == DeliveryStatus.PENDING.value,
                delivery_table.c.next_attempt_at <= now,
            )
            .order_by(delivery_table.c.next_attempt_at, delivery_table.c.id)
            .limit(limit)
        )
        with self._translated(), self._transaction() as conn:
            return [to_delivery(row) for row in conn.execute(stmt)]

    def next_delivery_at(self) -> float | None:
        stmt = select(func.min(delivery_table.c.next_attempt_at)).where(
            delivery_table.c.status == DeliveryStatus.PENDING.value
        )
        with self._translated(), self._transaction() as conn:
            found = conn.scalar(stmt)
        return None if found is None else float(found)

    def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        channel: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Delivery], int]:
        where: list[ColumnElement[bool]] = []
        if status is not None:
            where.append(delivery_table.c.status == status.value)
        if channel is not None:
            where.append(delivery_table.c.channel == channel)
        page = (
            select_deliveries()
            .where(*where)
            .order_by(delivery_table.c.created_at.desc(), delivery_table.c.id.desc())
            .limit(max(limit, 0))
            .offset(max(offset, 0))
        )
        with self._translated(), self._transaction() as conn:
            found = [to_delivery(row) for row in conn.execute(page)]
            total = _count(conn, delivery_table, where)
        return found, total

    def get_delivery(self, key: str) -> Delivery | None:
        stmt = select_deliveries().where(delivery_table.c.key == key)
        with self._translated(), self._transaction() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else to_delivery(row)

    def list_silences(self, include_expired_after: float | None = None) -> list[Silence]:
        stmt = select(silence_table).order_by(silence_table.c.starts_at, silence_table.c.id)
        if include_expired_after is not None:
            stmt = stmt.where(silence_table.c.ends_at >= include_expired_after)
        with self._translated(), self._transaction() as conn:
            return [to_silence(row) for row in conn.execute(stmt)]

    def get_silence(self, silence_id: str) -> Silence | None:
        stmt = select(silence_table).where(silence_table.c.id == silence_id)
        with self._translated(), self._transaction() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else to_silence(row)


def _count(conn: Connection, table: Table, where: Sequence[ColumnElement[bool]]) -> int:
    return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)
