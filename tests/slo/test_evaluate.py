"""SLOs over a known history in a real store: exact SLI, downtime, budget and burn-rate times.

The history: one result a minute for 30 days, with outages of known lengths,
written through the store's real write path (so the rollups are the ones a
running Tocsin keeps).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tocsin.platforms.base import DeployStatus
from tocsin.platforms.events import DeployEvent
from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.slo.evaluate import evaluate
from tocsin.slo.model import SLOConfig
from tocsin.slo.probe import burn_rules, result_values
from tocsin.store import Store, open_store

MINUTE = 60.0
DAY = 86400.0
START = datetime(2026, 9, 1, tzinfo=UTC).timestamp()
END = START + 30 * DAY  # the history covers [START, END)
OUTAGE = START + 29 * DAY + 10 * 3600  # day 30, 10:00 UTC: 30 minutes down


def history(check: str, bad: set[float], latency: dict[float, float] | None = None,
            days: int = 30) -> Iterator[CheckResult]:
    for minute in range(days * 1440):
        at = START + minute * MINUTE
        status = CheckStatus.FAILING if at in bad else CheckStatus.OK
        yield CheckResult(check=check, status=status, started_at=at,
                          latency_ms=(latency or {}).get(at, 100.0))


def minutes(start: float, count: int) -> set[float]:
    return {start + i * MINUTE for i in range(count)}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("slo") / "tocsin.db"
    opened = open_store(f"sqlite:///{path}")
    opened.migrate()
    results = list(history("api", minutes(OUTAGE, 30)))
    slow = {at: 900.0 for at in minutes(START + 10 * DAY, 10)}  # two slow 5-minute windows
    results += history("web", set(), slow)
    for offset in range(0, len(results), 20_000):
        opened.write_results(results[offset:offset + 20_000])
    deploys = [DeployEvent(f"dep-{i}", "backend", "backend:deploy",
                           DeployStatus.UPDATE_FAILED if i == 7 else DeployStatus.LIVE,
                           "api", None, None, START + i * DAY, START + i * DAY + 60,
                           START + i * DAY + 60) for i in range(20)]
    deploys.append(DeployEvent("dep-building", "backend", "backend:deploy",
                               DeployStatus.BUILD_IN_PROGRESS, "api", None, None,
                               START + 25 * DAY, None, START + 25 * DAY))
    opened.record_deploys(deploys)
    yield opened
    opened.close()


def slo(**fields: Any) -> SLOConfig:
    base: dict[str, Any] = {"name": "api uptime", "service": "backend",
                            "indicator": "availability", "objective": "99.9%", "window": "30d"}
    return SLOConfig.model_validate({**base, **fields})


def test_availability_over_the_window(store: Store) -> None:
    found = evaluate(store, slo(), ["api"], END)
    budget = found.budget
    assert budget.total == 43_200 and budget.good == 43_170
    assert budget.sli == pytest.approx(43_170 / 43_200)
    assert budget.allowed == pytest.approx(43.2)  # minutes: 0.1 % of 30 days
    assert budget.used == pytest.approx(30.0)  # the outage's 30 minutes
    assert budget.remaining == pytest.approx(13.2)
    assert budget.met is True
    assert found.burn["3d"] == pytest.approx(30 / 4320 / 0.001)


def test_a_stricter_objective_is_missed(store: Store) -> None:
    found = evaluate(store, slo(objective="99.95%"), ["api"], END)
    assert found.budget.allowed == pytest.approx(21.6)
    assert found.budget.met is False and found.budget.remaining < 0
    assert found.exhaustion_s == 0.0


def test_burn_alerts_fire_and_resolve_at_the_computed_minutes(tmp_path: Path) -> None:
    """Minute by minute, as a running Tocsin sees it: only results up to now are stored."""
    opened = open_store(f"sqlite:///{tmp_path / 'burn.db'}")
    opened.migrate()
    before = OUTAGE - 3 * DAY - 3600
    opened.write_results([CheckResult("api", CheckStatus.OK, before + i * MINUTE, 100.0)
                          for i in range(int((OUTAGE - before) // MINUTE))])
    thresholds = {"page_fast": 14.4, "page_slow": 6.0, "ticket": 1.0}
    fired: dict[str, float] = {}
    resolved: dict[str, float] = {}
    for minute in range(45):
        at = OUTAGE + minute * MINUTE
        status = CheckStatus.FAILING if minute < 30 else CheckStatus.OK
        opened.write_results([CheckResult("api", status, at, 100.0)])
        values = result_values(evaluate(opened, slo(), ["api"], at + 30))
        for rule, threshold in thresholds.items():
            burning = values.get(rule, 0.0) >= threshold
            if burning and rule not in fired:
                fired[rule] = at + 30
            if not burning and rule in fired and rule not in resolved:
                resolved[rule] = at + 30
    opened.close()
    # 1 h: one failed run of ~60 is 16.7x >= 14.4 at once.
    assert fired["page_fast"] == OUTAGE + 30
    # 6 h: 0.006 x ~365 runs = 2.2: the third failed run.
    assert fired["page_slow"] == OUTAGE + 2 * MINUTE + 30
    # 3 d: 0.001 x ~4325 runs = 4.3: the fifth failed run.
    assert fired["ticket"] == OUTAGE + 4 * MINUTE + 30
    # The last failed run is at 10:29; the 5-minute window is clean from 10:35.
    assert resolved["page_fast"] == OUTAGE + 35 * MINUTE + 30
    assert "ticket" not in resolved  # a 3-day window remembers


def test_latency_counts_five_minute_windows(store: Store) -> None:
    found = evaluate(store, slo(indicator="latency_p95 < 500ms", objective="99%"), ["web"], END)
    assert found.budget.total == 8640 and found.budget.good == 8638
    assert found.budget.allowed == pytest.approx(432.0)  # 1 % of 30 days, in minutes
    assert found.budget.used == pytest.approx(10.0)


def test_deploy_success_counts_finished_deploys(store: Store) -> None:
    found = evaluate(store, slo(name="deploys", service="*", indicator="deploy_success",
                                objective="95%"), [], END)
    assert (found.budget.good, found.budget.total) == (19, 20)  # in-progress not counted
    assert found.budget.unit == "events"
    assert found.budget.met is True


def test_calendar_month_window(store: Store) -> None:
    # September 2026 has 30 days: the window is the month, the budget 43.2 minutes.
    found = evaluate(store, slo(window=None, calendar="month"), ["api"],
                     datetime(2026, 9, 30, 23, 0, tzinfo=UTC).timestamp())
    assert found.since == START
    assert found.budget.allowed == pytest.approx(43.2)
    assert found.budget.used == pytest.approx(30.0, abs=0.1)


def test_no_data_is_no_verdict(store: Store) -> None:
    found = evaluate(store, slo(), ["nothing-here"], END)
    assert found.budget.sli is None and found.budget.met is None
    assert "sli" not in result_values(found)


def test_burn_rules_follow_the_config() -> None:
    rules = burn_rules(slo())
    assert [(r.metric, r.severity.value) for r in rules] == [
        ("burn-page-fast", "P1"), ("burn-page-slow", "P1"), ("burn-ticket", "P3")]
    assert burn_rules(slo(burn_alerts=False)) == []
    only_ticket = burn_rules(slo(burn_alerts={"page": None, "ticket": "P4"}))
    assert [(r.metric, r.severity.value) for r in only_ticket] == [("burn-ticket", "P4")]
