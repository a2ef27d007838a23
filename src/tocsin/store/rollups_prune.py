"""`PruneSQL`: retention of :class:`~tocsin.store.sql.SQLStore` — removing, in batches, what
:class:`~tocsin.store.retention.Retention` no longer keeps, and checkpointing the WAL.

Each tier is pruned check by check: one read finds the checks that have rows
past the cutoff (an index probe each), then each of those loses them in
transactions of at most ``batch`` rows, with a pause between, so the result
writer waits for one short transaction at most.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, select, update

from tocsin.store.base import Store
from tocsin.store.retention import PruneCounts, Retention
from tocsin.store.rollups_fold import DAY, HOUR
from tocsin.store.schema import checks, raw_results, rollup_days, rollup_hours

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy import Connection, Engine

    from tocsin.store.sql import DialectHooks


class PruneSQL(Store):
    """The retention methods of :class:`Store`."""

    _hooks: DialectHooks
    _engine: Engine
    _stripped_below: int  # hours before this have no 5-minute detail left

    @abstractmethod
    def _transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _translated(self) -> AbstractContextManager[None]:
        """Turns SQLAlchemy and driver exceptions into :class:`StoreError`."""

    @abstractmethod
    def _flush_rollups(self) -> None:
        """Write the rollups held in memory."""

    def prune(self, now: float, retention: Retention | None = None, *, batch: int = 2000,
              pause: float = 0.0) -> PruneCounts:
        retention = retention or Retention()
        self._flush_rollups()  # what is pruned next is then in the stored rollups
        raw_cutoff = now - retention.raw
        minutes_cutoff = int((now - retention.rollups_5m) // HOUR)
        hours_cutoff = int((now - retention.rollups_1h) // HOUR)
        days_cutoff = int((now - retention.rollups_1h) // DAY)
        with self._translated():
            with self._transaction() as conn:
                check_ids = list(conn.scalars(select(checks.c.id).order_by(checks.c.id)))
            counts = [0, 0, 0, 0]
            # Hours are deleted before their detail is stripped: no work on doomed rows.
            tiers: list[tuple[int, Table, ColumnElement[Any], float, bool]] = [
                (0, raw_results, raw_results.c.started_at, raw_cutoff, False),
                (2, rollup_hours, rollup_hours.c.hour, hours_cutoff, False),
                (1, rollup_hours, rollup_hours.c.hour, minutes_cutoff, True),
                (3, rollup_days, rollup_days.c.day, days_cutoff, False),
            ]
            for tier, table, key, cutoff, strip in tiers:
                # Hours below the last pass's cutoff were stripped then: start there.
                floor = max(hours_cutoff, self._stripped_below) if strip else None
                probe = select(key).where(table.c.check_id == bindparam("check_id"),
                                          key < cutoff).limit(1)
                if strip:
                    probe = probe.where(key >= floor, table.c.minutes.is_not(None))
                with self._transaction() as conn:
                    # Most checks have nothing to prune: find those that do, in one read.
                    due = [c for c in check_ids
                           if conn.scalar(probe, {"check_id": c}) is not None]
                for check_id in due:
                    counts[tier] += self._prune_tier(check_id, table, key, cutoff, floor,
                                                     batch, pause)
            self._stripped_below = minutes_cutoff
        return PruneCounts(*counts)

    def _prune_tier(self, check_id: int, table: Table, key: ColumnElement[Any],
                    cutoff: float, floor: int | None, batch: int, pause: float) -> int:
        """Remove ``check_id``'s rows with ``key < cutoff``, ``batch`` rows per transaction;
        with a ``floor``, drop the 5-minute detail of those with ``floor <= key`` instead."""
        strip = floor is not None
        where = and_(table.c.check_id == check_id, key < cutoff)
        if strip:
            where = and_(where, key >= floor, table.c.minutes.is_not(None))
        removed = 0
        while True:
            with self._transaction(write=True) as conn:
                # The key past this batch; None when the rest fits in one.
                bound = conn.scalar(select(key).where(where).order_by(key)
                                    .offset(batch).limit(1))
                in_batch = where if bound is None else and_(where, key < bound)
                if strip:
                    done = conn.execute(update(table).where(in_batch).values(minutes=None))
                else:
                    done = conn.execute(delete(table).where(in_batch))
                removed += done.rowcount
            if bound is None:
                return removed
            if pause:
                time.sleep(pause)

    def checkpoint(self) -> None:
        if self._hooks.checkpoint is not None:
            with self._translated():
                self._hooks.checkpoint(self._engine)
