"""`DeploysSQL`: the deploy-event half of :class:`~tocsin.store.sql.SQLStore`.

Deploys a ``deploy`` check saw, upserted by deploy id (a status change
replaces the row) through the backend's portable upsert hook. Transactions and
the translation of driver errors are the concrete store's, as in
:mod:`tocsin.store.alerts_sql`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, select

from tocsin.platforms.base import DeployStatus
from tocsin.platforms.events import DeployEvent
from tocsin.store.base import Store
from tocsin.store.schema import deploy_events as deploy_table

if TYPE_CHECKING:
    from tocsin.store.sql import DialectHooks


class DeploysSQL(Store):
    """The deploy-event methods of :class:`Store`, over the concrete store's transactions."""

    _hooks: DialectHooks

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _translated(self) -> AbstractContextManager[None]:
        """Turns SQLAlchemy and driver exceptions into :class:`StoreError`."""

    def record_deploys(self, events: Sequence[DeployEvent]) -> None:
        # The last event of a deploy in the batch wins: it is the newest state seen.
        rows = list({event.deploy_id: _deploy_row(event) for event in events}.values())
        if not rows:
            return
        with self._translated(), self._transaction(write=True) as conn:
            conn.execute(self._hooks.upsert(deploy_table), rows)

    def list_deploys(self, service: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[DeployEvent]:
        if limit <= 0:
            return []
        c = deploy_table.c
        stmt = select(deploy_table)
        if service is not None:
            stmt = stmt.where(c.service == service)
        if since is not None:
            stmt = stmt.where(c.created_at >= since)
        stmt = stmt.order_by(c.created_at.desc(), c.deploy_id.desc()).limit(limit)
        with self._translated(), self._transaction() as conn:
            return [_to_event(row) for row in conn.execute(stmt)]


def _deploy_row(event: DeployEvent) -> dict[str, Any]:
    return {
        "deploy_id": event.deploy_id,
        "service": event.service,
        "check": event.check,
        "status": event.status.value,
        "trigger": event.trigger,
        "commit_id": event.commit_id,
        "commit_message": event.commit_message,
        "created_at": event.created_at,
        "finished_at": event.finished_at,
        "seen_at": event.seen_at,
    }


def _to_event(row: Row[Any]) -> DeployEvent:
    try:
        status = DeployStatus(row.status)
    except ValueError:
        status = DeployStatus.UNKNOWN
    return DeployEvent(
        deploy_id=row.deploy_id, service=row.service, check=row.check, status=status,
        trigger=row.trigger, commit_id=row.commit_id, commit_message=row.commit_message,
        created_at=row.created_at, finished_at=row.finished_at, seen_at=row.seen_at,
    )
