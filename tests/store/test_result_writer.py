from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

import pytest

from tocsin.probes.base import CheckResult
from tocsin.store import ResultWriter, Store, StoreUnavailable

from .conftest import result


class FlakyStore:
    """Wraps a real store; its first ``failures`` writes raise ``error`` (an injected fault).

    Everything but ``write_results`` goes to the real store.
    """

    def __init__(self, inner: Store, failures: int, error: Exception | None = None) -> None:
        self.inner = inner
        self.failures = failures
        self.error = error or StoreUnavailable("database is locked")
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_results(self, results: Sequence[CheckResult]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        self.inner.write_results(results)


def as_store(flaky: FlakyStore) -> Store:
    return cast(Store, flaky)


def stored_times(store: Store, check: str = "a") -> list[float]:
    return sorted(r.started_at for r in store.history(check, limit=1_000_000))


async def test_results_are_written_in_batches_of_batch_size(store: Store) -> None:
    writer = ResultWriter(store, batch_size=500)
    writer.start()
    for t in range(1200):
        writer.submit(result("a", float(t)))

    await writer.flush()

    assert (writer.batches, writer.written, writer.pending) == (3, 1200, 0)
    assert stored_times(store) == [float(t) for t in range(1200)]
    await writer.close()


async def test_a_partial_batch_is_written_after_flush_interval(store: Store) -> None:
    writer = ResultWriter(store, flush_interval=0.01)
    writer.start()
    writer.submit(result("a", 1.0))

    for _ in range(200):
        if writer.written:
            break
        await asyncio.sleep(0.01)

    assert writer.written == 1
    assert stored_times(store) == [1.0]
    await writer.close()


async def test_flush_waits_only_for_what_was_submitted_before_it(store: Store) -> None:
    writer = ResultWriter(store, batch_size=10, flush_interval=60)
    writer.start()
    for t in range(25):
        writer.submit(result("a", float(t)))

    await writer.flush()

    assert writer.written == 25
    await writer.flush()  # nothing new: returns at once
    await writer.close()


async def test_close_writes_everything_pending(store: Store) -> None:
    writer = ResultWriter(store, flush_interval=60)
    writer.start()
    for t in range(10):
        writer.submit(result("a", float(t)))

    await writer.close()

    assert writer.written == 10
    assert stored_times(store) == [float(t) for t in range(10)]


async def test_a_failing_store_is_retried_and_nothing_is_lost(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyStore(store, failures=2)
    writer = ResultWriter(as_store(flaky), batch_size=100, retry_initial=0.001)
    writer.start()
    for t in range(100):
        writer.submit(result("a", float(t)))

    with caplog.at_level(logging.ERROR, logger="tocsin.store.writer"):
        await writer.flush()

    assert (flaky.attempts, writer.written, writer.batches, writer.dropped) == (3, 100, 1, 0)
    assert writer.last_error is None  # the store accepts writes again
    assert len(caplog.records) == 2  # one per failed attempt, not one per result
    assert stored_times(store) == [float(t) for t in range(100)]
    await writer.close()


async def test_retry_backoff_doubles_up_to_its_cap(store: Store) -> None:
    sleeps: list[float] = []

    async def recording_sleep(delay: float) -> None:
        sleeps.append(delay)

    flaky = FlakyStore(store, failures=5)
    writer = ResultWriter(as_store(flaky), retry_initial=0.5, retry_max=2.0, sleep=recording_sleep)
    writer.start()
    writer.submit(result("a", 1.0))

    await writer.flush()

    assert sleeps == [0.5, 1.0, 2.0, 2.0, 2.0]
    await writer.close()


async def test_overflow_drops_the_oldest_and_counts_them(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    writer = ResultWriter(store, batch_size=10, max_pending=10)
    with caplog.at_level(logging.WARNING, logger="tocsin.store.writer"):
        for t in range(25):  # not started: nothing drains the queue
            writer.submit(result("a", float(t)))

    assert (writer.dropped, writer.pending) == (15, 10)
    assert len(caplog.records) == 1

    writer.start()
    await writer.close()

    assert stored_times(store) == [float(t) for t in range(15, 25)]


async def test_an_error_once_is_retried_before_anything_is_dropped(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    broken = FlakyStore(store, failures=1, error=TypeError("not a result"))
    writer = ResultWriter(as_store(broken), batch_size=5, retry_initial=0.001)
    writer.start()
    for t in range(10):
        writer.submit(result("a", float(t)))
    await writer.flush()

    assert (writer.dropped, writer.written) == (0, 10)
    assert stored_times(store) == [float(t) for t in range(10)]
    await writer.close()


async def test_a_result_the_store_refuses_is_dropped_alone(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    writer = ResultWriter(store, batch_size=16, retry_initial=0.001)
    writer.start()
    with caplog.at_level(logging.ERROR, logger="tocsin.store.writer"):
        for t in range(16):
            # Past 64 bits: the database refuses this one row for good.
            poison = {"code": 2**70} if t == 11 else {}
            writer.submit(result("a", float(t), **poison))
        await writer.flush()

    assert (writer.dropped, writer.written) == (1, 15)
    assert stored_times(store) == [float(t) for t in range(16) if t != 11]
    dropped = [r for r in caplog.records if "dropping it" in r.getMessage()]
    assert len(dropped) == 1 and "at 11.000" in dropped[0].getMessage()
    assert writer.available and writer.last_error is None
    await writer.close()


async def test_unavailability_is_reported_after_the_threshold_and_cleared_by_a_write(
    store: Store
) -> None:
    now = [1000.0]
    reports: list[tuple[bool, str]] = []

    async def advancing_sleep(delay: float) -> None:
        now[0] += delay  # each backoff moves the injected clock on

    flaky = FlakyStore(store, failures=6)
    writer = ResultWriter(as_store(flaky), retry_initial=4.0, retry_max=16.0,
                          unavailable_after=30.0, sleep=advancing_sleep, clock=lambda: now[0],
                          report_unavailable=lambda down, why: reports.append((down, why)))
    writer.start()
    writer.submit(result("a", 1.0))
    await writer.flush()

    # Failures at 1000, 1004, 1012, 1028 (not yet 30 s), 1044 (reported), 1060; written at 1076.
    assert reports == [(True, "StoreUnavailable: database is locked"), (False, "")]
    assert writer.available and writer.unavailable_since is None
    await writer.close()


async def test_a_short_outage_is_not_reported(store: Store) -> None:
    reports: list[tuple[bool, str]] = []
    flaky = FlakyStore(store, failures=2)
    writer = ResultWriter(as_store(flaky), retry_initial=0.001, unavailable_after=30.0,
                          report_unavailable=lambda down, why: reports.append((down, why)))
    writer.start()
    writer.submit(result("a", 1.0))
    await writer.flush()

    assert reports == [] and writer.written == 1
    await writer.close()


async def test_close_can_abandon_a_store_that_stays_down(store: Store) -> None:
    down = FlakyStore(store, failures=10**9)
    writer = ResultWriter(as_store(down), batch_size=5, retry_initial=0.001, retry_max=0.001)
    writer.start()
    for t in range(12):
        writer.submit(result("a", float(t)))

    for _ in range(200):
        if writer.last_error is not None:
            break
        await asyncio.sleep(0.005)
    assert writer.last_error == "StoreUnavailable: database is locked"

    await writer.close(abandon_after=0.05)

    assert (writer.written, writer.dropped, writer.pending) == (0, 12, 0)


async def test_flush_before_anything_is_submitted_returns_at_once(store: Store) -> None:
    writer = ResultWriter(store)

    await writer.flush()
    await writer.close()


def test_max_pending_below_batch_size_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="max_pending"):
        ResultWriter(store, batch_size=500, max_pending=100)
