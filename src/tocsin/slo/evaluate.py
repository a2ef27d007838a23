"""An SLO's indicator measured from the store, its budget, and its burn rates.

Everything reads rollups, never raw results:

- ``availability`` and ``error_rate`` count check runs: good = OK runs of the
  SLO's checks (their HTTP checks, or their ``error_rate`` checks, whose runs
  fail when the windowed rate is above the check's ``expect.error_rate``);
- ``latency_pNN < X`` counts 5-minute windows: good = a window whose pNN
  latency over the SLO's checks, merged, was under X (windows without a
  measured latency do not count);
- ``deploy_success`` counts finished deploys: good = went live.

The SLO window uses hourly rollups (5-minute ones for latency); the burn-rate
windows (5 m to 3 d) use 5-minute rollups, read once per evaluation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tocsin.config.cron import zone
from tocsin.platforms.base import DeployStatus
from tocsin.slo.budget import BURN_WINDOWS, Budget, burn_rate, pair_burn
from tocsin.slo.model import Indicator, IndicatorKind, SLOConfig
from tocsin.store.base import Store
from tocsin.store.rollups import Aggregate, quantiles

FIVE_MINUTES = 300
HOUR = 3600
# The burn windows, long and short, in seconds: 5m 30m 1h 6h 3d.
BURN_SPANS = tuple(sorted({span for pair in BURN_WINDOWS for span in (pair.long, pair.short)}))
_GOOD_DEPLOYS = frozenset({DeployStatus.LIVE, DeployStatus.DEACTIVATED})
_BAD_DEPLOYS = frozenset({DeployStatus.BUILD_FAILED, DeployStatus.UPDATE_FAILED,
                          DeployStatus.PRE_DEPLOY_FAILED, DeployStatus.CANCELED})
DEPLOY_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Sample:
    """Good and total of one bucket (or one deploy) starting at ``start``."""

    start: float
    good: float
    total: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An SLO at one moment: its window, budget, burn rates and time to exhaustion."""

    since: float
    until: float
    budget: Budget
    burn: dict[str, float | None]  # "5m", "1h", … → rate
    pairs: dict[str, float | None]  # "page_fast", "page_slow", "ticket" → the pair's rate
    exhaustion_s: float | None


def window_start(slo: SLOConfig, now: float) -> float:
    """Where the SLO's window starts: ``now - window``, or the first of this month."""
    if slo.calendar == "month":
        local = datetime.fromtimestamp(now, zone(slo.timezone))
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    return now - slo.rolling_window


def samples(store: Store, slo: SLOConfig, checks: Sequence[str], since: float, until: float,
            step: int) -> list[Sample]:
    """The indicator's good/total per bucket of ``step`` (300 or 3600) in ``[since, until)``."""
    indicator = slo.parsed_indicator
    if indicator.kind is IndicatorKind.DEPLOY_SUCCESS:
        return deploy_samples(store, slo, since, until)
    merged: dict[float, Aggregate] = defaultdict(Aggregate)
    for check in checks:
        for rollup in store.rollups(check, since, until, step):
            merged[rollup.start].merge(rollup.aggregate)
    if indicator.kind is IndicatorKind.LATENCY:
        return [Sample(start, float(_fast_enough(aggregate, indicator)), 1.0)
                for start, aggregate in sorted(merged.items()) if aggregate.measured]
    return [Sample(start, float(a.count - a.failures - a.errors), float(a.count))
            for start, a in sorted(merged.items()) if a.count]


def deploy_status_good(status: DeployStatus) -> bool | None:
    """True for a deploy that went live, False for one that failed, None while in progress."""
    if status in _GOOD_DEPLOYS:
        return True
    if status in _BAD_DEPLOYS:
        return False
    return None


def deploy_samples(store: Store, slo: SLOConfig, since: float, until: float) -> list[Sample]:
    service = None if slo.service == "*" else slo.service
    found = []
    for deploy in store.list_deploys(service, since=since, limit=DEPLOY_LIMIT):
        verdict = deploy_status_good(deploy.status)
        if deploy.created_at < until and verdict is not None:
            found.append(Sample(deploy.created_at, float(verdict), 1.0))
    return sorted(found, key=lambda sample: sample.start)


def _fast_enough(aggregate: Aggregate, indicator: Indicator) -> bool:
    assert indicator.percentile is not None and indicator.threshold is not None
    (estimate_us,) = quantiles(aggregate.histogram, (indicator.percentile / 100,),
                               aggregate.min_us, aggregate.max_us)
    return estimate_us / 1000 < indicator.threshold


def budget_of(slo: SLOConfig, found: Sequence[Sample], now: float,
              window: float | None = None) -> Budget:
    """The budget over the window; for time budgets, bad samples stand for their share of
    the time measured (from the first sample to ``now``)."""
    good = sum(sample.good for sample in found)
    total = sum(sample.total for sample in found)
    if slo.parsed_indicator.kind is IndicatorKind.DEPLOY_SUCCESS:
        return Budget.in_events(slo.objective, good, total)
    window = budget_window(slo, now) if window is None else window
    covered = now - found[0].start if found else 0.0
    return Budget.in_minutes(slo.objective, good, total, window_s=window,
                             covered_s=min(covered, window))


def burn_rates(slo: SLOConfig, recent: Sequence[Sample], now: float,
               step: float = FIVE_MINUTES) -> dict[str, float | None]:
    """Burn rate over each burn window, from samples of ``step`` seconds.

    A window takes every bucket that overlaps it, so it spans between its
    length and one bucket more: a burst is never cut out of the short window
    by bucket alignment, and a page resolves once a whole clean bucket has
    passed (5 minutes after the last bad run, at most 10).
    """
    rates: dict[str, float | None] = {}
    for span in BURN_SPANS:
        start = now - span - step
        window = [s for s in recent if s.start > start]
        rates[_span_name(span)] = burn_rate(sum(s.total - s.good for s in window),
                                            sum(s.total for s in window), slo.objective)
    return rates


def evaluate(store: Store, slo: SLOConfig, checks: Sequence[str], now: float) -> Evaluation:
    """The SLO at ``now``: SLI and budget over its window, burn rates over the pairs."""
    since = window_start(slo, now)
    kind = slo.parsed_indicator.kind
    long_step = FIVE_MINUTES if kind is IndicatorKind.LATENCY else HOUR
    in_window = samples(store, slo, checks, since, now, long_step)
    budget = budget_of(slo, in_window, now)
    recent = samples(store, slo, checks, now - max(BURN_SPANS) - FIVE_MINUTES, now,
                     FIVE_MINUTES)
    burn = burn_rates(slo, recent, now, 0.0 if kind is IndicatorKind.DEPLOY_SUCCESS
                      else FIVE_MINUTES)
    pairs = {pair.name: pair_burn(burn[_span_name(pair.long)], burn[_span_name(pair.short)])
             for pair in BURN_WINDOWS}
    current = burn[_span_name(BURN_WINDOWS[0].long)]  # the last hour's rate
    return Evaluation(since, now, budget, burn, pairs,
                      budget.exhaustion_in(current, budget_window(slo, now)))


def evaluate_between(store: Store, slo: SLOConfig, checks: Sequence[str], since: float,
                     until: float) -> Budget:
    """The SLO's budget over ``[since, until)`` (a report's month) instead of its own window."""
    step = FIVE_MINUTES if slo.parsed_indicator.kind is IndicatorKind.LATENCY else HOUR
    return budget_of(slo, samples(store, slo, checks, since, until, step), until,
                     window=until - since)


def budget_window(slo: SLOConfig, now: float) -> float:
    return _month_length(slo, now) if slo.calendar == "month" else slo.rolling_window


def _month_length(slo: SLOConfig, now: float) -> float:
    local = datetime.fromtimestamp(now, zone(slo.timezone))
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                 else first.replace(month=first.month + 1))
    return following.timestamp() - first.timestamp()


def _span_name(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 60)}m"


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
