"""`HeartbeatsSQL`: the heartbeat-ping half of :class:`~tocsin.store.sql.SQLStore`.

Pings are appended as they arrive and read back newest first: the API shows a
heartbeat's recent pings (with the bodies its job sent), and at start the
runtime replays each heartbeat's latest pings to rebuild its state.
Transactions and the translation of driver errors are the concrete store's, as
in :mod:`tocsin.store.alerts_sql`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from tocsin.probes.heartbeat_book import Ping, PingKind
from tocsin.store.base import Store
from tocsin.store.schema import heartbeat_pings


class HeartbeatsSQL(Store):
    """The heartbeat-ping methods of :class:`Store`, over the concrete store's transactions."""

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _translated(self) -> AbstractContextManager[None]:
        """Turns SQLAlchemy and driver exceptions into :class:`StoreError`."""

    def record_pings(self, pings: Sequence[Ping]) -> None:
        if not pings:
            return
        with self._translated(), self._transaction(write=True) as conn:
            conn.execute(insert(heartbeat_pings), [_ping_row(ping) for ping in pings])

    def list_pings(self, check: str, since: float | None = None,
                   limit: int = 100) -> list[Ping]:
        if limit <= 0:
            return []
        c = heartbeat_pings.c
        stmt = select(heartbeat_pings).where(c.check == check)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        stmt = stmt.order_by(c.at.desc(), c.id.desc()).limit(limit)
        with self._translated(), self._transaction() as conn:
            return [_to_ping(row) for row in conn.execute(stmt)]


def _ping_row(ping: Ping) -> dict[str, Any]:
    return {
        "check": ping.check, "kind": ping.kind.value, "at": ping.at, "rid": ping.rid,
        "exit_code": ping.exit_code, "duration_s": ping.duration_s, "body": ping.body,
        "truncated": int(ping.truncated), "method": ping.method, "source": ping.source,
    }


def _to_ping(row: Row[Any]) -> Ping:
    return Ping(
        check=row.check, kind=PingKind(row.kind), at=row.at, rid=row.rid,
        exit_code=row.exit_code, duration_s=row.duration_s, body=row.body,
        truncated=bool(row.truncated), method=row.method, source=row.source,
    )
