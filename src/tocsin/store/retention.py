"""Retention: how long each tier of history is kept, and the task that prunes it.

:class:`Retention` is what :meth:`Store.prune` takes; the config's
``retention:`` section becomes one. :class:`Pruner` runs in the process:
every ``interval`` it prunes in small batches (each its own short
transaction, with a pause between, so the result writer is never held up
for long) and then checkpoints the database's write-ahead log, so that on
SQLite the WAL cannot grow without bound. Alerts, incidents, deliveries,
deploys and the remediation audit log are never pruned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tocsin.store.base import Store

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Retention:
    """Seconds each tier is kept: raw results, 5-minute rollups, hourly and daily rollups."""

    raw: float = 14 * DAY
    rollups_5m: float = 90 * DAY
    rollups_1h: float = 730 * DAY

    def __post_init__(self) -> None:
        if min(self.raw, self.rollups_5m, self.rollups_1h) <= 0:
            raise ValueError("retention periods must be longer than zero")
        if not self.raw <= self.rollups_5m <= self.rollups_1h:
            raise ValueError("retention must not shrink with coarser tiers: "
                             "raw <= rollups_5m <= rollups_1h")


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """What one :meth:`Store.prune` removed: raw results, hours that lost their
    5-minute detail, hourly rows and daily rows."""

    raw: int = 0
    minutes: int = 0
    hours: int = 0
    days: int = 0


class Pruner:
    """Prunes ``store`` to ``retention`` every ``interval`` seconds, from a background task."""

    def __init__(self, store: Store, retention: Retention, *, interval: float = 600.0,
                 batch: int = 2000, pause: float = 0.02,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.retention = retention
        self.interval = interval
        self.batch = batch
        self.pause = pause
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tocsin-pruner")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def prune_once(self) -> PruneCounts:
        """One pass: prune every tier, then checkpoint the WAL."""
        from tocsin.store.base import StoreError

        try:
            counts = await asyncio.to_thread(self.store.prune, self._clock(), self.retention,
                                             batch=self.batch, pause=self.pause)
            await asyncio.to_thread(self.store.checkpoint)
        except StoreError as exc:
            log.error("pruning %s failed; next try in %.0f s: %s",
                      self.store.url, self.interval, exc)
            return PruneCounts()
        self.passes += 1
        if counts != PruneCounts():
            log.info("pruned %d raw results, %d hours of 5-minute detail, %d hourly and "
                     "%d daily rollups", counts.raw, counts.minutes, counts.hours, counts.days)
        return counts

    async def _run(self) -> None:
        while True:
            await self.prune_once()
            await asyncio.sleep(self.interval)
