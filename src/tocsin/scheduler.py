"""The scheduler: runs every check at its interval, spread out, never overlapping itself.

One timer loop over a heap of due times drives every check (10,000 sleeping
tasks would cost more memory and wake-ups than one heap). Each check's first
run is offset by a deterministic fraction of its interval taken from a hash of
its name, so 10,000 checks at 60 s start as an even stream, not a burst, and
keep the same phase across restarts. Runs are fixed-rate (due, due+i, due+2i…):
a slow run does not push the next one later, and a run that would overlap a
still-running one of the same check is skipped and counted.

Every run is bounded: a global semaphore caps concurrent probes, and the
check's timeout (plus a small grace for the probe's own cleanup) is enforced
here even if a probe forgets to. The lag between a run's due time and the
moment its probe actually starts is recorded; it is the measure of whether the
scheduler keeps up.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tocsin.probes import CheckResult, CheckSpec, Probe

log = logging.getLogger(__name__)

ResultSink = Callable[[CheckResult], None]

TIMEOUT_GRACE = 0.5  # seconds a probe gets beyond its timeout to clean up before it is cut off
LAG_SAMPLES = 16384  # recent lag samples kept for percentiles
TIMER_TOLERANCE = 0.001  # seconds; a run may start this much before its due time


def phase_offset(name: str, interval: float) -> float:
    """Deterministic offset in [0, interval) for a check's first run."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


@dataclass(eq=False)
class _Entry:
    probe: Probe[Any]
    due: float
    running: bool = False
    retired: bool = False  # removed or replaced by a reload; dropped when popped


@dataclass
class LagStats:
    """Schedule lag, in seconds, over recent runs."""

    count: int
    p50: float
    p99: float
    max: float


@dataclass
class SchedulerStats:
    """Counters a dashboard or a benchmark reads."""

    runs: int = 0
    skipped_overlap: int = 0  # due while the previous run of the same check still ran
    missed: int = 0  # due times passed over because the loop fell more than an interval behind
    crashed: int = 0  # probes that raised instead of returning a result
    lag_max: float = 0.0
    lags: array[float] = field(default_factory=lambda: array("d"))
    _lag_cursor: int = 0

    def record_lag(self, lag: float) -> None:
        if len(self.lags) < LAG_SAMPLES:
            self.lags.append(lag)
        else:
            self.lags[self._lag_cursor] = lag
            self._lag_cursor = (self._lag_cursor + 1) % LAG_SAMPLES
        if lag > self.lag_max:
            self.lag_max = lag

    def lag(self) -> LagStats:
        ordered = sorted(self.lags)
        if not ordered:
            return LagStats(0, 0.0, 0.0, 0.0)
        last = len(ordered) - 1
        return LagStats(
            count=len(ordered),
            p50=ordered[round(last * 0.50)],
            p99=ordered[round(last * 0.99)],
            max=self.lag_max,
        )


class Scheduler:
    """Runs probes on their intervals and hands each result to the sinks.

    ``sinks`` are called synchronously, in order, with every result; they must
    be quick (append to a queue, update a cache).
    """

    def __init__(
        self,
        sinks: Iterable[ResultSink],
        *,
        concurrency: int = 1000,
        jitter: bool = True,
    ) -> None:
        self._sinks = list(sinks)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._jitter = jitter
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, _Entry, bool]] = []  # due, order, entry, one-shot
        self._sequence = 0
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._started = False
        self._stopping = False
        self.stats = SchedulerStats()

    def add_sink(self, sink: ResultSink) -> None:
        """Hand every later result to ``sink`` too, after the sinks before it."""
        self._sinks.append(sink)

    # -- the set of checks -------------------------------------------------

    @property
    def checks(self) -> dict[str, CheckSpec[Any]]:
        return {name: entry.probe.spec for name, entry in self._entries.items()}

    def probe(self, name: str) -> Probe[Any] | None:
        """The scheduled probe of check ``name``, if there is one."""
        entry = self._entries.get(name)
        return entry.probe if entry is not None else None

    def set_probes(self, probes: Iterable[Probe[Any]]) -> None:
        """Replace the scheduled set. Unchanged checks keep their phase and any run in flight."""
        loop_now = asyncio.get_running_loop().time()
        wanted = {probe.spec.name: probe for probe in probes}
        for name, entry in list(self._entries.items()):
            if name not in wanted or wanted[name].spec != entry.probe.spec:
                entry.retired = True
                del self._entries[name]
        for name, probe in wanted.items():
            if name in self._entries:
                continue
            interval = probe.spec.interval
            offset = phase_offset(name, interval) if self._jitter else 0.0
            entry = _Entry(probe=probe, due=loop_now + offset)
            self._entries[name] = entry
            self._push(entry)
        self._arm()

    def _push(self, entry: _Entry, due: float | None = None) -> None:
        self._sequence += 1
        oneshot = due is not None
        heapq.heappush(self._heap, (entry.due if due is None else due, self._sequence, entry,
                                    oneshot))

    def run_soon(self, name: str, delay: float) -> None:
        """Run check ``name`` once after ``delay`` s, besides its schedule (an alert's re-check)."""
        entry = self._entries.get(name)
        if entry is None or self._stopping:
            return
        self._push(entry, asyncio.get_running_loop().time() + delay)
        self._arm()

    # -- running -----------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self._arm()

    def _arm(self) -> None:
        """Set the one timer for the earliest due time (callbacks, not a task: cheap wake-ups)."""
        if not self._started or self._stopping:
            return
        heap = self._heap
        while heap and heap[0][2].retired:
            heapq.heappop(heap)
        if not heap:
            return
        due = heap[0][0]
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(due, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._stopping:
            return
        heap = self._heap
        # The loop's timers have millisecond granularity (libuv) and may fire a
        # hair before the due time: take what is due within that tolerance, or
        # the timer would re-arm for the same instant and spin.
        now = asyncio.get_running_loop().time()
        horizon = now + TIMER_TOLERANCE
        while heap and heap[0][0] <= horizon:
            due, _, entry, oneshot = heapq.heappop(heap)
            if entry.retired:
                continue
            if oneshot:
                self._launch_oneshot(entry, due)
            else:
                self._launch(entry, now)
        self._arm()

    def _launch(self, entry: _Entry, now: float) -> None:
        due = entry.due
        interval = entry.probe.spec.interval
        next_due = due + interval
        if next_due <= now:  # more than an interval behind: skip ahead, keep the phase
            behind = int((now - due) // interval)
            self.stats.missed += behind
            next_due = due + (behind + 1) * interval
        entry.due = next_due
        self._push(entry)
        if entry.running:
            self.stats.skipped_overlap += 1
            return
        self._start_run(entry, due)

    def _launch_oneshot(self, entry: _Entry, due: float) -> None:
        if entry.running:
            return  # the run in flight answers the same question
        self._start_run(entry, due)

    def _start_run(self, entry: _Entry, due: float) -> None:
        entry.running = True
        task = asyncio.create_task(self._run(entry, due))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run(self, entry: _Entry, due: float) -> None:
        probe = entry.probe
        try:
            async with self._semaphore:
                self.stats.record_lag(max(0.0, asyncio.get_running_loop().time() - due))
                result = await run_bounded(probe, self.stats)
            self.stats.runs += 1
            if entry.retired:
                return  # removed by a reload while running: its result no longer belongs anywhere
            for sink in self._sinks:
                try:
                    sink(result)
                except Exception:
                    log.exception("result sink %r failed for check %s", sink, probe.spec.name)
        finally:
            entry.running = False

    async def stop(self, grace: float = 30.0) -> None:
        """Stop launching runs; let runs in flight finish (they are bounded by their timeouts)."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._in_flight:
            _, still_running = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.gather(*still_running, return_exceptions=True)


async def run_bounded(probe: Probe[Any], stats: SchedulerStats | None = None) -> CheckResult:
    """Run ``probe`` once, cut off at its timeout (plus grace); a crash becomes an error result."""
    spec = probe.spec
    started_at = time.time()
    try:
        async with asyncio.timeout(spec.timeout + TIMEOUT_GRACE):
            return await probe.run()
    except TimeoutError:
        return CheckResult.error(
            spec.name, started_at, f"timed out after {spec.timeout:g} s",
            latency_ms=(time.time() - started_at) * 1000,
        )
    except Exception as exc:  # a bug in the probe must not cost the scheduler
        if stats is not None:
            stats.crashed += 1
        log.exception("probe %s raised instead of returning a result", spec.name)
        return CheckResult.error(spec.name, started_at, f"probe crashed: {type(exc).__name__}")


async def run_once(probes: Iterable[Probe[Any]], concurrency: int = 100,
                   on_result: ResultSink | None = None) -> list[CheckResult]:
    """Run each probe once, concurrently, bounded by its timeout; results in input order."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(probe: Probe[Any]) -> CheckResult:
        async with semaphore:
            result = await run_bounded(probe)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(probe) for probe in probes)))
