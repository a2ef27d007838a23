"""Error budgets and burn rates: the SRE Workbook's vectors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tocsin.alerting.model import Severity
from tocsin.slo.budget import (
    BURN_WINDOWS,
    PAGE_FAST,
    PAGE_SLOW,
    TICKET,
    Budget,
    burn_rate,
    pair_burn,
)
from tocsin.slo.model import IndicatorKind, SLOConfig, parse_indicator

DAY = 86400.0


def test_the_workbook_pairs_and_their_budget_shares() -> None:
    # 14.4 = 0.02 × 720 / 1: 2 % of a 30-day budget in one hour.
    assert PAGE_FAST.rate == pytest.approx(0.02 * 720 / 1)
    assert PAGE_FAST.budget_share == pytest.approx(0.02)
    assert PAGE_SLOW.budget_share == pytest.approx(0.05)
    assert TICKET.budget_share == pytest.approx(0.10)
    for pair in BURN_WINDOWS:
        assert pair.short == pytest.approx(pair.long / 12)


def test_burn_rate_is_error_ratio_over_allowed_ratio() -> None:
    assert burn_rate(bad=1, total=1000, objective=0.999) == pytest.approx(1.0)
    assert burn_rate(bad=144, total=10_000, objective=0.999) == pytest.approx(14.4)
    assert burn_rate(bad=0, total=0, objective=0.999) is None
    assert pair_burn(20.0, 3.0) == 3.0  # both must exceed: the smaller decides
    assert pair_burn(None, 3.0) is None


def test_a_999_month_allows_43_2_minutes() -> None:
    budget = Budget.in_minutes(0.999, good=43_200, total=43_200, window_s=30 * DAY,
                               covered_s=30 * DAY)
    assert budget.allowed == pytest.approx(43.2)
    assert budget.used == 0 and budget.met is True


def test_minutes_used_count_the_time_measured_not_the_whole_window() -> None:
    # 15 days measured at one run a minute, 10 runs failed: 10 minutes down.
    budget = Budget.in_minutes(0.999, good=21_590, total=21_600, window_s=30 * DAY,
                               covered_s=15 * DAY)
    assert budget.used == pytest.approx(10.0)
    assert budget.remaining == pytest.approx(33.2)
    assert budget.used_share == pytest.approx(10 / 43.2)
    assert budget.sli == pytest.approx(21_590 / 21_600)


def test_time_to_exhaustion_at_the_current_burn() -> None:
    budget = Budget.in_minutes(0.999, good=999, total=1000, window_s=30 * DAY,
                               covered_s=30 * DAY)
    # Half the budget left: at 1× it lasts half the window, at 14.4× 1/28.8 of it.
    assert budget.used_share == pytest.approx(1.0)
    half = Budget.in_minutes(0.999, good=1999, total=2000, window_s=30 * DAY,
                             covered_s=30 * DAY)
    assert half.used_share == pytest.approx(0.5)
    assert half.exhaustion_in(1.0, 30 * DAY) == pytest.approx(15 * DAY)
    assert half.exhaustion_in(14.4, 30 * DAY) == pytest.approx(15 * DAY / 14.4)
    assert half.exhaustion_in(0.0, 30 * DAY) is None
    spent = Budget.in_minutes(0.999, good=998, total=1000, window_s=30 * DAY,
                              covered_s=30 * DAY)
    assert spent.exhaustion_in(2.0, 30 * DAY) == 0.0


def test_event_budgets_count_deploys() -> None:
    budget = Budget.in_events(0.95, good=38, total=40)
    assert budget.allowed == pytest.approx(2.0)
    assert budget.used == 2 and budget.remaining == pytest.approx(0.0)
    assert budget.met is True
    assert Budget.in_events(0.95, good=0, total=0).sli is None


@pytest.mark.parametrize("text, kind, percentile, threshold", [
    ("availability", IndicatorKind.AVAILABILITY, None, None),
    ("deploy_success", IndicatorKind.DEPLOY_SUCCESS, None, None),
    ("latency_p95 < 500ms", IndicatorKind.LATENCY, 95.0, 500.0),
    ("latency_p99.9 < 1.5s", IndicatorKind.LATENCY, 99.9, 1500.0),
    ("error_rate < 1%", IndicatorKind.ERROR_RATE, None, 1.0),
])
def test_indicators_parse(text: str, kind: IndicatorKind, percentile: float | None,
                          threshold: float | None) -> None:
    found = parse_indicator(text)
    assert (found.kind, found.percentile, found.threshold) == (kind, percentile, threshold)


@pytest.mark.parametrize("fields, message", [
    ({"objective": "100%"}, "strictly between 0% and 100%"),
    ({"objective": "0%"}, "strictly between 0% and 100%"),
    ({"objective": "150%"}, "strictly between 0% and 100%"),
    ({"objective": "99.9"}, "with a % sign"),
    ({"indicator": "uptime"}, "unknown indicator 'uptime'"),
    ({"indicator": "latency_p95 < fast"}, "not a duration"),
    ({"indicator": "latency_p0 < 1s"}, "between p1 and p99.9"),
    ({"window": "30d", "calendar": "month"}, "not both"),
    ({"window": "10m"}, "between 1h and 400d"),
    ({"service": "*"}, "deploy_success only"),
    ({"burn_alerts": {"page": "P9"}}, "P9"),
])
def test_slo_config_errors(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "up", "service": "backend",
                               "indicator": "availability", "objective": "99.9%"}
    with pytest.raises(ValidationError) as caught:
        SLOConfig.model_validate({**base, **fields})
    assert message in str(caught.value)


def test_slo_config_defaults() -> None:
    slo = SLOConfig.model_validate({"name": "up", "service": "backend",
                                    "indicator": "availability", "objective": "99.9%"})
    assert slo.objective == pytest.approx(0.999)
    assert slo.rolling_window == 30 * DAY
    assert slo.burn_alerts is not False
    assert (slo.burn_alerts.page, slo.burn_alerts.ticket) == (Severity.P1, Severity.P3)
    assert slo.check_name == "slo:up"
    quiet = SLOConfig.model_validate({"name": "d", "service": "*", "calendar": "month",
                                      "indicator": "deploy_success", "objective": "95%",
                                      "burn_alerts": {"ticket": None}})
    assert quiet.burn_alerts is not False and quiet.burn_alerts.ticket is None
