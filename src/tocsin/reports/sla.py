"""Build the monthly SLA report from what Tocsin measured: rollups, incidents, deploys, SLOs.

For each service of the config (in config order):

- uptime, downtime and p95 latency from the hourly rollups of its HTTP checks
  (all its checks when it has none), merged across checks; downtime counts,
  hour by hour, the bad share of the runs times the hour;
- daily uptime and p95 for the charts, by calendar day in the report's time zone;
- the error rate: the mean of the hourly health reports' error rate for the
  service (each the mean of its ``error_rate`` checks over that hour), when
  health reports were kept;
- deploys from the deploy events (finished ones: live versus failed);
- every incident that overlapped the month, its duration clipped to the month;
- every SLO of the service evaluated over the calendar month.

A month in the future is refused; a month without data gives a report that says so.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from tocsin.config.cron import zone
from tocsin.config.model import TocsinConfig
from tocsin.probes.base import CheckSpec
from tocsin.reports.model import DayPoint, IncidentRow, ServiceSLA, SLAReport, SLORow
from tocsin.slo.evaluate import DEPLOY_LIMIT, deploy_status_good, evaluate_between
from tocsin.slo.model import SLOConfig
from tocsin.store.base import Store
from tocsin.store.rollups import Aggregate

HOUR = 3600
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class ReportError(ValueError):
    """A report cannot be made as asked (a malformed or future month)."""


def month_bounds(month: str, timezone: str) -> tuple[float, float]:
    """``[start, end)`` of ``2026-10`` in ``timezone``, as epoch seconds."""
    match = _MONTH.fullmatch(month.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ReportError(f"invalid month {month!r}: write it as YYYY-MM, e.g. 2026-10")
    year, number = int(match.group(1)), int(match.group(2))
    tz = zone(timezone)
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + 1, 1, 1, tzinfo=tz) if number == 12 else datetime(year, number + 1, 1,
                                                                             tzinfo=tz)
    return start.timestamp(), end.timestamp()


def previous_month(now: float, timezone: str) -> str:
    local = datetime.fromtimestamp(now, zone(timezone))
    year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return f"{year:04d}-{month:02d}"


def build_sla_report(store: Store, config: TocsinConfig, checks: Sequence[CheckSpec[Any]],
                     month: str, now: float, *, timezone: str | None = None,
                     title: str | None = None) -> SLAReport:
    settings = config.reports.sla
    timezone = timezone or settings.timezone
    start, end = month_bounds(month, timezone)
    if start > now:
        raise ReportError(f"{month} has not begun yet: a report covers a month that started")
    until = min(end, now)
    services = [_service(store, config, checks, name, start, until, timezone)
                for name in config.services]
    return SLAReport(title=title or settings.title, month=month, timezone=timezone,
                     start=start, end=end, generated_at=now, services=services)


def _service(store: Store, config: TocsinConfig, specs: Sequence[CheckSpec[Any]], name: str,
             start: float, until: float, timezone: str) -> ServiceSLA:
    own = [spec for spec in specs if spec.service == name and spec.type != "slo"]
    measured = [spec.name for spec in own if spec.type == "http"] or [spec.name for spec in own]
    hours: dict[float, Aggregate] = defaultdict(Aggregate)
    for check in measured:
        for rollup in store.rollups(check, start, until, HOUR):
            hours[rollup.start].merge(rollup.aggregate)
    total = Aggregate()
    downtime = 0.0
    days: dict[date, Aggregate] = defaultdict(Aggregate)
    tz = zone(timezone)
    for at, aggregate in hours.items():
        total.merge(aggregate)
        if aggregate.count:
            bad = aggregate.failures + aggregate.errors
            downtime += bad / aggregate.count * 60
        days[datetime.fromtimestamp(at, tz).date()].merge(aggregate)
    summary = total.summary()
    deploys_ok, deploys_total = _deploys(store, name, start, until)
    return ServiceSLA(
        name=name, uptime=summary.uptime, downtime_minutes=downtime, checks=total.count,
        p95_ms=summary.p95, error_rate=_error_rate(store, name, start, until),
        deploys_ok=deploys_ok, deploys_total=deploys_total,
        incidents=_incidents(store, name, start, until),
        slos=[_slo_row(store, slo, specs, start, until)
              for slo in config.slos if slo.service == name],
        days=_day_points(days, start, until, tz),
    )


def _day_points(days: dict[date, Aggregate], start: float, until: float,
                tz: Any) -> list[DayPoint]:
    first = datetime.fromtimestamp(start, tz).date()
    last = datetime.fromtimestamp(until - 1, tz).date()
    points = []
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        aggregate = days.get(day)
        summary = aggregate.summary() if aggregate is not None else None
        points.append(DayPoint(day, summary.uptime if summary else None,
                               summary.p95 if summary else None))
    return points


def _deploys(store: Store, service: str, start: float, until: float) -> tuple[int, int]:
    ok = total = 0
    for deploy in store.list_deploys(service, since=start, limit=DEPLOY_LIMIT):
        verdict = deploy_status_good(deploy.status)
        if deploy.created_at < until and verdict is not None:
            total += 1
            ok += verdict
    return ok, total


def _incidents(store: Store, service: str, start: float, until: float) -> list[IncidentRow]:
    summaries: dict[str, list[str]] = defaultdict(list)
    for alert in store.load_alerts():
        if alert.incident_id is not None and alert.service == service:
            summaries[alert.incident_id].append(alert.summary or alert.rule)
    rows = []
    for incident in store.load_incidents(open_only=False):
        if incident.service != service:
            continue
        closed = incident.closed_at
        if incident.opened_at >= until or (closed is not None and closed < start):
            continue
        clipped = min(closed if closed is not None else until, until) - max(incident.opened_at,
                                                                            start)
        text = "; ".join(dict.fromkeys(summaries.get(incident.id, []))) or "—"
        rows.append(IncidentRow(service, incident.severity.value, incident.opened_at, closed,
                                max(0.0, clipped), text))
    return sorted(rows, key=lambda row: row.opened_at)


def _error_rate(store: Store, service: str, start: float, until: float) -> float | None:
    """The mean of the hourly health reports' error rate of ``service`` over the month."""
    rates = []
    for report in store.list_reports("health", since=start, until=until, limit=24 * 32):
        entries = report.data.get("services")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("name") == service:
                rate = entry.get("error_rate_1h")
                if isinstance(rate, (int, float)):
                    rates.append(float(rate))
    return sum(rates) / len(rates) if rates else None


def _slo_row(store: Store, slo: SLOConfig, specs: Sequence[CheckSpec[Any]], start: float,
             until: float) -> SLORow:
    spec = next((s for s in specs if s.name == slo.check_name), None)
    checks = list(getattr(spec.config, "checks", ())) if spec is not None else []
    budget = evaluate_between(store, slo, checks, start, until)
    return SLORow(slo.name, slo.indicator, slo.objective, budget.sli, budget.met, budget.unit,
                  budget.allowed, budget.used)
