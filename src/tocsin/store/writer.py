"""`ResultWriter`: results from the event loop to the store, in batches, off the loop.

Probes finish on the event loop; the store is synchronous. The writer sits in
between: :meth:`ResultWriter.submit` appends to a queue (O(1), never blocks,
never raises), and one background task takes batches of up to ``batch_size``
— as soon as a batch is full, or ``flush_interval`` after the first result
of a quiet spell — and writes each in one transaction on one dedicated
thread, so SQLite sees a single writer.

Backpressure. While the store is unavailable (:class:`StoreUnavailable`:
locked, disk full, connection lost; or :class:`SchemaError`, which only a
person can fix) the batch is kept and retried with exponential backoff, and
results queue in memory up to ``max_pending`` (the ``scheduler.store_buffer``
setting); beyond that the oldest queued ones are dropped and counted, logged
once per episode: the newest results are the ones the dashboard and alerting
need. Checks and alerting never wait for the store; they read memory.

Once the store has refused writes for ``unavailable_after`` seconds,
``report_unavailable(True, error)`` is called (the runtime raises the P2
"store unavailable" alert from it), and ``report_unavailable(False, "")``
after the next write that succeeds.

Any other failure (a plain :class:`StoreError`, or a bug) means the store
refuses something in the batch. It is retried once — the error may be a
transient one not recognised as such — then the batch is split in halves,
recursively, so that one poison result is dropped alone instead of blocking
every result behind it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from tocsin.probes.base import CheckResult
from tocsin.store.base import SchemaError, Store, StoreUnavailable

log = logging.getLogger(__name__)

#: Called with (True, why) once the store has been unavailable for a while, (False, "") when
#: it takes writes again.
ReportUnavailable = Callable[[bool, str], None]


class ResultWriter:
    """Batches submitted results into ``store`` from a background task.

    ``submit`` must be called from the event loop's thread. Counters:
    ``written`` (results stored), ``dropped`` (results given up on),
    ``batches`` (successful writes), ``pending`` (queued or being written),
    ``last_error`` (why the last write failed, as text; None once a write succeeds,
    so it says whether the store is accepting writes now), ``unavailable_since``
    (``clock()`` time of the first failed write since the last one that
    succeeded; None while writes succeed).
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_pending: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        unavailable_after: float = 30.0,
        report_unavailable: ReportUnavailable | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_pending < batch_size:
            raise ValueError("max_pending must be at least batch_size")
        self.store = store
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.unavailable_after = unavailable_after
        self.report_unavailable = report_unavailable
        self._sleep = sleep  # injected so tests can watch the backoff without waiting
        self._clock = clock

        self.written = 0
        self.dropped = 0
        self.batches = 0
        self.last_error: str | None = None
        self.unavailable_since: float | None = None
        self._reported_unavailable = False

        self._queue: deque[CheckResult] = deque()
        self._batch: list[CheckResult] = []  # being written; older than anything queued
        # Results are numbered in submission order. Everything before
        # _batch_start (while a batch is out) or _taken (otherwise) is written
        # or dropped: that is what flush() waits on.
        self._submitted = 0
        self._taken = 0  # results that left the queue, into a batch or dropped
        self._batch_start = 0
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._overflowing = False
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._batch)

    @property
    def available(self) -> bool:
        """Whether the last write succeeded (True before the first)."""
        return self.unavailable_since is None

    def submit(self, result: CheckResult) -> None:
        """Queue ``result`` for writing; drops the oldest queued result when full."""
        queue = self._queue
        queue.append(result)
        self._submitted += 1
        queued = len(queue)
        if queued + len(self._batch) > self.max_pending:
            self._drop_oldest()
        if queued == 1 or queued >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        """Start the background flush task on the running event loop."""
        if self._task is not None:
            raise RuntimeError("ResultWriter already started")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-store")
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="tocsin-result-writer"
        )

    async def flush(self) -> None:
        """Return once every result submitted before this call is written (or dropped)."""
        target = self._submitted
        if self._accounted() >= target:
            return
        if self._task is None or self._task.done():
            raise RuntimeError("ResultWriter is not running")
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((target, waiter))
        self._wake.set()
        await waiter

    async def close(self, abandon_after: float | None = None) -> None:
        """Write everything pending, then stop.

        With ``abandon_after``, give up after that many seconds (the store is
        down): what is still pending is counted as dropped and logged.
        """
        task, self._closing = self._task, True
        if task is None:
            return
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), abandon_after)
        except TimeoutError:
            lost = self.pending
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._queue.clear()
            self.dropped += lost
            log.error("store writer closed with %d results unwritten after %s s",
                      lost, abandon_after)
        finally:
            for _, waiter in self._flush_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._flush_waiters.clear()
            if self._executor is not None:
                # wait=False: a write cancelled by the timeout may still hold the thread.
                self._executor.shutdown(wait=False)

    # -- the background task --------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                await self._sleep_until_woken(None)
                continue
            if len(self._queue) < self.batch_size and not self._in_a_hurry():
                # Let a batch build up, but no result waits longer than flush_interval.
                await self._sleep_until_woken(self.flush_interval)
            await self._write_batch()

    async def _sleep_until_woken(self, at_most: float | None) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout(at_most):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _write_batch(self) -> None:
        queue = self._queue
        size = min(len(queue), self.batch_size)
        self._batch_start = self._taken
        batch = self._batch = [queue.popleft() for _ in range(size)]
        self._taken += size
        try:
            await self._store_batch(batch)
        finally:
            self._batch = []
            self._release_flush_waiters()

    async def _store_batch(self, batch: list[CheckResult], *, split: bool = False) -> None:
        """Write ``batch``: retry while the store is unavailable; isolate what it refuses.

        A ``split`` batch is a half of one refused twice: it is not retried
        before halving again, so a store that refuses everything costs one
        attempt per node of the halving, not a backoff sleep each.
        """
        loop = asyncio.get_running_loop()
        delay = self.retry_initial
        refused = 1 if split else 0
        while True:
            try:
                await loop.run_in_executor(self._executor, self.store.write_results, batch)
            except (StoreUnavailable, SchemaError) as exc:
                self._failed(exc)
                log.error("writing %d results to %s failed, retrying in %.1f s: %s",
                          len(batch), self.store.url, delay, exc)
            except Exception as exc:
                self._failed(exc)
                refused += 1
                if refused > 1:
                    if len(batch) == 1:
                        self.dropped += 1
                        log.error("%s refuses the result of %s at %.3f; dropping it: %s",
                                  self.store.url, batch[0].check, batch[0].started_at, exc)
                        return
                    # Halve until the result it refuses is alone; the rest goes in.
                    half = len(batch) // 2
                    await self._store_batch(batch[:half], split=True)
                    await self._store_batch(batch[half:], split=True)
                    return
                log.debug("writing %d results failed (%s); trying once more", len(batch), exc)
            else:
                self._succeeded(len(batch))
                return
            await self._sleep(delay)
            delay = min(delay * 2, self.retry_max)

    def _failed(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        now = self._clock()
        if self.unavailable_since is None:
            self.unavailable_since = now
        elif (not self._reported_unavailable
              and now - self.unavailable_since >= self.unavailable_after):
            self._reported_unavailable = True
            log.error("%s has refused writes for %.0f s; %d results buffered in memory",
                      self.store.url, now - self.unavailable_since, self.pending)
            self._report(True, self.last_error)

    def _succeeded(self, size: int) -> None:
        self.written += size
        self.batches += 1
        self.last_error = None
        if self.unavailable_since is not None:
            if self._reported_unavailable:
                log.warning("%s takes writes again after %.0f s", self.store.url,
                            self._clock() - self.unavailable_since)
                self._reported_unavailable = False
                self._report(False, "")
            self.unavailable_since = None
        if self._overflowing and self.pending <= self.max_pending // 2:
            self._overflowing = False
            log.warning("store writer caught up; %d results dropped so far", self.dropped)

    def _report(self, unavailable: bool, why: str) -> None:
        if self.report_unavailable is None:
            return
        try:
            self.report_unavailable(unavailable, why)
        except Exception:  # the writer must go on writing whatever a listener does
            log.exception("reporting the store's availability failed")

    # -- bookkeeping ----------------------------------------------------------

    def _drop_oldest(self) -> None:
        self._queue.popleft()
        self._taken += 1
        self.dropped += 1
        if not self._overflowing:
            self._overflowing = True
            log.warning(
                "store writer has %d results pending: dropping the oldest until it catches up",
                self.max_pending,
            )
        if self._flush_waiters:
            self._release_flush_waiters()

    def _accounted(self) -> int:
        return self._batch_start if self._batch else self._taken

    def _in_a_hurry(self) -> bool:
        return self._closing or bool(self._flush_waiters)

    def _release_flush_waiters(self) -> None:
        accounted = self._accounted()
        still_waiting = []
        for target, waiter in self._flush_waiters:
            if target <= accounted:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still_waiting.append((target, waiter))
        self._flush_waiters = still_waiting
