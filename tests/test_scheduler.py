"""The scheduler, driven by in-process probes whose behaviour each test chooses."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from tocsin.probes import CheckConfig, CheckResult, CheckSpec, CheckStatus, Probe, ProbeContext
from tocsin.scheduler import Scheduler, phase_offset, run_once

Behaviour = Callable[[], Awaitable[None]]


async def _quick() -> None:
    return None


class ScriptedProbe(Probe[CheckConfig]):
    """A probe that runs a scripted coroutine and records when it started."""

    type = "scripted"
    config_model = CheckConfig

    def __init__(self, name: str, interval: float, timeout: float = 5.0,
                 behaviour: Behaviour = _quick) -> None:
        spec: CheckSpec[CheckConfig] = CheckSpec(
            name=name, service="svc", service_url=None, interval=interval, timeout=timeout,
            config=CheckConfig(type="scripted"),
        )
        super().__init__(spec, ProbeContext())
        self.behaviour = behaviour
        self.starts: list[float] = []
        self.running = 0
        self.max_running = 0

    async def run(self) -> CheckResult:
        self.starts.append(time.monotonic())
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await self.behaviour()
        finally:
            self.running -= 1
        return self.new_result(CheckStatus.OK, time.time(), latency_ms=1.0)


def _sleep(seconds: float) -> Behaviour:
    async def behaviour() -> None:
        await asyncio.sleep(seconds)
    return behaviour


async def _run_for(scheduler: Scheduler, seconds: float) -> None:
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop()


async def test_each_check_runs_at_its_interval() -> None:
    results: list[CheckResult] = []
    fast = ScriptedProbe("fast", interval=0.1)
    slow = ScriptedProbe("slow", interval=0.3)
    scheduler = Scheduler([results.append])
    scheduler.set_probes([fast, slow])
    await _run_for(scheduler, 1.0)
    assert 9 <= len(fast.starts) <= 11
    assert 3 <= len(slow.starts) <= 4
    gaps = [b - a for a, b in zip(fast.starts, fast.starts[1:], strict=False)]
    assert all(0.07 < gap < 0.13 for gap in gaps), gaps
    assert Counter(r.check for r in results) == {"fast": len(fast.starts),
                                                  "slow": len(slow.starts)}


def test_phase_offsets_are_deterministic_and_spread_evenly() -> None:
    assert phase_offset("backend:http", 60) == phase_offset("backend:http", 60)
    offsets = [phase_offset(f"check-{i}", 10.0) for i in range(10_000)]
    assert all(0 <= offset < 10.0 for offset in offsets)
    per_second = Counter(int(offset) for offset in offsets)
    # 10,000 checks over 10 s: every second gets close to 1,000 first runs, not a burst.
    assert all(900 < count < 1100 for count in per_second.values()), per_second


async def test_a_check_never_overlaps_itself() -> None:
    probe = ScriptedProbe("sluggish", interval=0.1, behaviour=_sleep(0.35))
    scheduler = Scheduler([], jitter=False)
    scheduler.set_probes([probe])
    await _run_for(scheduler, 1.0)
    assert probe.max_running == 1
    assert scheduler.stats.skipped_overlap >= 5


async def test_global_concurrency_limit_is_respected() -> None:
    running = 0
    peak = 0

    async def busy() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1

    probes = [ScriptedProbe(f"c{i}", interval=1.0, behaviour=busy) for i in range(20)]
    scheduler = Scheduler([], concurrency=5, jitter=False)
    scheduler.set_probes(probes)
    await _run_for(scheduler, 0.5)
    assert peak == 5


async def test_timeout_is_enforced_even_when_the_probe_ignores_it() -> None:
    results: list[CheckResult] = []
    hanging = ScriptedProbe("hangs", interval=10.0, timeout=0.2, behaviour=_sleep(3600))
    scheduler = Scheduler([results.append], jitter=False)
    scheduler.set_probes([hanging])
    await _run_for(scheduler, 1.0)
    assert len(results) == 1
    assert results[0].status is CheckStatus.ERROR
    assert results[0].message == "timed out after 0.2 s"


async def test_a_crashing_probe_costs_one_error_result_not_the_schedule() -> None:
    async def crash() -> None:
        raise RuntimeError("bug in a probe")

    results: list[CheckResult] = []
    broken = ScriptedProbe("broken", interval=0.1, behaviour=crash)
    healthy = ScriptedProbe("healthy", interval=0.1)
    scheduler = Scheduler([results.append], jitter=False)
    scheduler.set_probes([broken, healthy])
    await _run_for(scheduler, 0.55)
    broken_results = [r for r in results if r.check == "broken"]
    assert len(broken_results) >= 5
    assert all(r.message == "probe crashed: RuntimeError" for r in broken_results)
    assert len(healthy.starts) >= 5
    assert scheduler.stats.crashed == len(broken_results)


async def test_a_hanging_check_does_not_delay_other_checks() -> None:
    hanging = ScriptedProbe("hangs", interval=0.1, timeout=5.0, behaviour=_sleep(3600))
    punctual = ScriptedProbe("punctual", interval=0.1)
    scheduler = Scheduler([])
    scheduler.set_probes([hanging, punctual])
    scheduler.start()
    await asyncio.sleep(1.0)
    lag = scheduler.stats.lag()
    assert len(punctual.starts) >= 9
    assert lag.max < 0.05
    stop = asyncio.create_task(scheduler.stop(grace=0.2))
    await stop
    assert hanging.running == 0  # cut off at the stop grace


async def test_stop_lets_runs_in_flight_finish() -> None:
    results: list[CheckResult] = []
    probe = ScriptedProbe("finishing", interval=10.0, behaviour=_sleep(0.3))
    scheduler = Scheduler([results.append], jitter=False)
    scheduler.set_probes([probe])
    scheduler.start()
    await asyncio.sleep(0.05)
    await scheduler.stop()
    assert [r.status for r in results] == [CheckStatus.OK]


async def test_reload_adds_removes_and_keeps_unchanged_checks() -> None:
    results: list[CheckResult] = []
    kept = ScriptedProbe("kept", interval=0.1)
    removed = ScriptedProbe("removed", interval=0.1)
    scheduler = Scheduler([results.append], jitter=False)
    scheduler.set_probes([kept, removed])
    scheduler.start()
    await asyncio.sleep(0.35)
    added = ScriptedProbe("added", interval=0.1)
    kept_again = ScriptedProbe("kept", interval=0.1)  # same spec: the running entry stays
    scheduler.set_probes([kept_again, added])
    removed_runs = len(removed.starts)
    await asyncio.sleep(0.35)
    await scheduler.stop()
    assert len(removed.starts) == removed_runs
    assert len(added.starts) >= 3
    assert len(kept.starts) >= 6 and kept_again.starts == []
    assert set(scheduler.checks) == {"kept", "added"}


async def test_run_once_returns_results_in_order() -> None:
    probes = [ScriptedProbe(f"c{i}", interval=60.0, behaviour=_sleep(0.01 * (5 - i)))
              for i in range(5)]
    seen: list[str] = []
    results = await run_once(probes, on_result=lambda r: seen.append(r.check))
    assert [r.check for r in results] == [f"c{i}" for i in range(5)]
    assert sorted(seen) == sorted(r.check for r in results)


async def test_run_soon_adds_one_run_without_moving_the_schedule() -> None:
    probe = ScriptedProbe("confirming", interval=10.0)
    scheduler = Scheduler([], jitter=False)
    scheduler.set_probes([probe])
    scheduler.start()
    await asyncio.sleep(0.05)
    scheduler.run_soon("confirming", 0.1)
    scheduler.run_soon("unknown-check", 0.1)  # ignored
    await asyncio.sleep(0.3)
    await scheduler.stop()
    assert len(probe.starts) == 2
    assert 0.08 < probe.starts[1] - probe.starts[0] < 0.2
