"""Backpressure end to end, over a real SQLite file that another connection locks.

While the store refuses writes, results wait in memory, the alert engine
keeps working, and the P2 "store unavailable" alert is raised and sent
straight through the channels; once the lock goes, everything buffered is
written, the alert resolves, and its outbox entry is stored as already sent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tocsin.alerting.model import (
    AlertState,
    DeliveryStatus,
    Notification,
    NotificationKind,
    Severity,
)
from tocsin.alerting.pipeline import STORE_ALERT, Alerting
from tocsin.config import load_config_text
from tocsin.probes import CheckStatus
from tocsin.store import ResultWriter
from tocsin.store.backends.sqlite import open_sqlite
from tocsin.store.sql import SQLStore
from tocsin.testing import FakeClock, RecordingChannel

from .conftest import result

CONFIG = """\
channels:
  pager: {type: recording}
policies:
  P2: {channels: [pager]}
services:
  api:
    url: http://127.0.0.1:9
    checks:
      - {type: http, name: api, alerts: [{when: down, severity: P3, confirm: 0}]}
"""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tocsin.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLStore]:
    opened = open_sqlite(f"sqlite:///{db_path}", busy_timeout_ms=20)  # fail fast on the lock
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
async def alerting(store: SQLStore) -> AsyncIterator[Alerting]:
    RecordingChannel.reset()
    config = load_config_text(CONFIG, "t.yaml", env={})
    stage = Alerting(config, store, FakeClock())
    await stage.start()
    yield stage
    await stage.stop()
    RecordingChannel.reset()


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_a_locked_store_buffers_results_raises_a_p2_and_recovers_without_loss(
        store: SQLStore, alerting: Alerting, db_path: Path) -> None:
    now = [1_000.0]
    writer = ResultWriter(store, batch_size=10, max_pending=1000, retry_initial=0.01,
                          retry_max=0.05, unavailable_after=30.0, clock=lambda: now[0],
                          report_unavailable=alerting.store_unavailable)
    writer.start()
    try:
        await _outage_and_recovery(store, alerting, writer, db_path, now)
    finally:
        await writer.close(abandon_after=1)


def store_pages(kind: NotificationKind | None = None) -> list[Notification]:
    return [n for n in RecordingChannel.sent.get("pager", [])
            if n.alerts[0].fingerprint == STORE_ALERT and kind in (None, n.kind)]


async def _outage_and_recovery(store: SQLStore, alerting: Alerting, writer: ResultWriter,
                               db_path: Path, now: list[float]) -> None:
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        for t in range(50):
            writer.submit(result("api", float(t)))
        await eventually(lambda: not writer.available)
        assert writer.written == 0 and writer.pending == 50

        # The engine goes on from memory: a failing check still fires, and pages.
        alerting.engine.observe(result("api", 60.0, status=CheckStatus.FAILING))
        assert alerting.engine.alerts["api:down"].state is AlertState.FIRING
        await eventually(lambda: any(n.alerts[0].fingerprint == "api:down"
                                     for n in RecordingChannel.sent.get("pager", [])))
        assert store_pages() == []  # not yet 30 s

        now[0] += 31  # past the threshold: the next failed attempt reports it
        await eventually(lambda: bool(store_pages()))
        page = store_pages()[0]
        assert page.kind is NotificationKind.FIRING and "store" in page.alerts[0].summary
        assert page.severity is Severity.P2
        assert alerting.engine.alerts[STORE_ALERT].state is AlertState.FIRING
        assert store.get_delivery(page.key) is None  # sent, but not stored yet
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    await writer.flush()
    assert (writer.written, writer.dropped, writer.pending) == (50, 0, 0)
    assert writer.available and writer.last_error is None
    assert len(store.history("api", limit=100)) == 50
    assert alerting.engine.alerts[STORE_ALERT].state is AlertState.RESOLVED

    # The state writer retries on its own backoff (16 s after 5 failures): give it time.
    await eventually(lambda: alerting.writer.last_error is None and not alerting.writer._queue,
                     within=60)
    stored = store.get_delivery(page.key)
    assert stored is not None and stored.status is DeliveryStatus.SENT and stored.attempts == 1
    await alerting.sender.deliver_due()
    kinds = [n.kind for n in store_pages()]
    assert kinds == [NotificationKind.FIRING, NotificationKind.RESOLVED]  # not paged twice


async def test_a_notification_that_fails_while_the_store_is_down_is_kept_for_the_outbox(
        store: SQLStore, alerting: Alerting, db_path: Path) -> None:
    pager = alerting.sender.channels["pager"]
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        pager.failures_left = 1  # type: ignore[attr-defined]  # the first send fails
        alerting.store_unavailable(True, "StoreUnavailable: disk full")
        await eventually(lambda: RecordingChannel.attempts.get("pager", 0) == 1)
        assert store_pages() == []
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    # Saved as pending with its failed attempt; the outbox, woken by the save, sends it.
    await eventually(lambda: bool(store_pages()), within=60)
    sent, total = store.list_deliveries(DeliveryStatus.SENT, "pager", 10, 0)
    assert total == 1 and sent[0].attempts == 2
    assert [n.kind for n in store_pages()] == [NotificationKind.FIRING]
