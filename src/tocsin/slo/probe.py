"""Each SLO is evaluated by an internal ``slo`` check, so its alerts are ordinary alerts.

The runtime schedules ``slo:<name>`` like any other check (every minute). Its
result carries the SLI, the budget and the burn rates as values, and its rules
— made here from the SLO's ``burn_alerts`` — are the SRE Workbook's pairs::

    page_fast >= 14.4   (1 h and 5 m)   severity `page` (P1 by default)
    page_slow >= 6      (6 h and 30 m)  severity `page`
    ticket >= 1         (3 d and 6 h)   severity `ticket` (P3 by default)

A pair's value is the smaller of its two windows' burn rates, so a rule holds
only when both exceed the rate. From there the alerting pipeline does what it
does for every alert: incidents, policies, silences, inhibition, the outbox.
The result is FAILING when the SLI is below the objective over the window.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from tocsin.alerting.rules import AlertRule
from tocsin.probes.base import CheckConfig, CheckResult, CheckSpec, CheckStatus, Probe, wall_clock
from tocsin.probes.registry import register_internal
from tocsin.slo.budget import PAGE_FAST, PAGE_SLOW, TICKET, BurnWindow
from tocsin.slo.evaluate import Evaluation, evaluate, finite
from tocsin.slo.model import IndicatorKind, SLOConfig
from tocsin.store.base import StoreError

SLO_INTERVAL = 60.0
SLO_TIMEOUT = 30.0
# Which checks of a service measure each indicator when the SLO does not name them.
INDICATOR_CHECK_TYPES: dict[IndicatorKind, frozenset[str]] = {
    IndicatorKind.AVAILABILITY: frozenset({"http"}),
    IndicatorKind.LATENCY: frozenset({"http"}),
    IndicatorKind.ERROR_RATE: frozenset({"error_rate"}),
    IndicatorKind.DEPLOY_SUCCESS: frozenset(),
}


class SLOCheckConfig(CheckConfig):
    """The internal check of one SLO: the SLO, and the checks whose results are its SLI."""

    type: Literal["slo"]
    slo: SLOConfig
    checks: tuple[str, ...] = ()


def burn_rules(slo: SLOConfig) -> list[AlertRule]:
    """The burn-rate alert rules of ``slo`` (none with ``burn_alerts: false``)."""
    if slo.burn_alerts is False:
        return []
    rules = []
    for pair, severity in ((PAGE_FAST, slo.burn_alerts.page), (PAGE_SLOW, slo.burn_alerts.page),
                           (TICKET, slo.burn_alerts.ticket)):
        if severity is None:
            continue
        rules.append(AlertRule.model_validate({
            "name": f"burn-{pair.name.replace('_', '-')}",
            "when": f"{pair.name} >= {pair.rate:g}",
            "severity": severity.value,
            "confirm": 0,
            "labels": {"slo": slo.name},
            "summary": _rule_summary(slo, pair),
        }))
    return rules


def _rule_summary(slo: SLOConfig, pair: BurnWindow) -> str:
    share = f"{pair.budget_share * 100:.0f} %"
    # A template: the SLO's name comes from the labels, so it is data, never template code.
    return ("SLO '{{ labels.slo }}' burns its error budget {{ '%.1f' | format(value) }}× "
            f"too fast (alert at {pair.rate:g}×: {share} of a 30-day budget in "
            f"{_human(pair.long)})")


def _human(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds / 3600:g} h"


def slo_spec(slo: SLOConfig, checks: Sequence[str]) -> CheckSpec[SLOCheckConfig]:
    config = SLOCheckConfig(type="slo", name=slo.check_name, slo=slo, checks=tuple(checks),
                            alerts=burn_rules(slo), labels={"slo": slo.name})
    return CheckSpec(name=slo.check_name, service=None if slo.service == "*" else slo.service,
                     service_url=None, interval=SLO_INTERVAL, timeout=SLO_TIMEOUT, config=config)


def result_values(evaluation: Evaluation) -> dict[str, float]:
    """What rules and charts read: SLI and budget in percent, burn rates, exhaustion in ms."""
    budget = evaluation.budget
    values: dict[str, float] = {"budget_used": budget.used, "budget_allowed": budget.allowed}
    if budget.sli is not None:
        values["sli"] = budget.sli * 100
    if budget.allowed > 0 and budget.sli is not None:
        values["budget_remaining"] = budget.remaining / budget.allowed * 100
    for name, rate in (*evaluation.burn.items(), *evaluation.pairs.items()):
        finite_rate = finite(rate)
        if finite_rate is not None:
            values[name if name in evaluation.pairs else f"burn_{name}"] = finite_rate
    if evaluation.exhaustion_s is not None:
        values["exhaustion"] = evaluation.exhaustion_s * 1000
    return values


def describe(slo: SLOConfig, evaluation: Evaluation) -> str:
    budget = evaluation.budget
    if budget.sli is None:
        return f"no data yet for {slo.indicator} since the window began"
    left = budget.remaining / budget.allowed * 100 if budget.allowed > 0 else 0.0
    hour = evaluation.burn.get("1h")
    burning = f"; burning {hour:.1f}× over the last hour" if hour is not None else ""
    return (f"{slo.indicator}: {budget.sli * 100:.3f} % (objective {slo.objective * 100:g} %), "
            f"{left:.0f} % of the error budget left{burning}")


@register_internal
class SLOProbe(Probe[SLOCheckConfig]):
    """Evaluates one SLO from the store's rollups, in a thread."""

    type: ClassVar[str] = "slo"
    config_model: ClassVar[builtins.type[CheckConfig]] = SLOCheckConfig

    async def run(self) -> CheckResult:
        now = wall_clock()
        store = self.context.store
        if store is None:
            return CheckResult.error(self.spec.name, now, "the store is not open")
        config = self.spec.config
        try:
            evaluation = await asyncio.to_thread(evaluate, store, config.slo, config.checks, now)
        except StoreError as error:
            return CheckResult.error(self.spec.name, now, f"cannot read the store: {error}")
        met = evaluation.budget.met
        status = CheckStatus.FAILING if met is False else CheckStatus.OK
        details: dict[str, Any] = {
            "slo": config.slo.name, "indicator": config.slo.indicator,
            "objective": config.slo.objective, "unit": evaluation.budget.unit,
            "window_start": evaluation.since, "good": evaluation.budget.good,
            "total": evaluation.budget.total,
        }
        return self.new_result(status, now, message=describe(config.slo, evaluation),
                               values=result_values(evaluation), details=details)
