"""The hourly health report: the original system's structure, from what Tocsin measured.

Each service with its status (operational, degraded, down, unknown), its checks,
its latency now and over the last hour (uptime, p95 from rollups), and its
error rate over the last hour (the mean of its ``error_rate`` checks' results);
the host's CPU, memory and disk (the ``host:`` checks); each SLO's state; and
the alerts that fired in the last 24 hours and 7 days, by severity.

The report is plain JSON data, stored with kind ``health``; :func:`render_health_html`
shows it as a page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from tocsin.alerting.model import AlertState, Severity
from tocsin.probes.base import CheckResult, CheckSpec
from tocsin.reports.jobs import ReportJob
from tocsin.reports.model import StoredReport
from tocsin.reports.settings import HealthReportSettings
from tocsin.store.base import Store, StoreError

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86400.0
EVENTS_LIMIT = 200_000
_LATENCY_TYPES = frozenset({"http", "tcp", "database"})


def build_health_report(store: Store, checks: Sequence[CheckSpec[Any]],
                        latest: Callable[[str], CheckResult | None], now: float) -> dict[str, Any]:
    """The report's figures at ``now``, as JSON-ready data."""
    by_service: dict[str, list[CheckSpec[Any]]] = {}
    for spec in checks:
        if spec.service is not None and spec.type != "slo":
            by_service.setdefault(spec.service, []).append(spec)
    hour = store.summary([spec.name for spec in checks if spec.type != "slo"], now - HOUR, now)
    services = [_service(name, specs, latest, hour, store, now)
                for name, specs in by_service.items()]
    host = [_check_row(spec, latest(spec.name)) for spec in checks
            if spec.service is None and spec.type == "system"]
    slos = [_slo_row(spec, latest(spec.name)) for spec in checks if spec.type == "slo"]
    counts = _alert_counts(store, now)
    states = [service["status"] for service in services]
    overall = ("down" if "down" in states else "degraded" if "degraded" in states
               else "operational" if states else "unknown")
    return {"generated_at": now, "overall": overall, "services": services, "host": host,
            "slos": slos, "alerts": counts}


def _service(name: str, specs: Sequence[CheckSpec[Any]],
             latest: Callable[[str], CheckResult | None], hour: Mapping[str, Any],
             store: Store, now: float) -> dict[str, Any]:
    rows = [_check_row(spec, latest(spec.name)) for spec in specs]
    statuses = [row["status"] for row in rows if row["status"] is not None]
    if not statuses:
        status = "unknown"
    elif all(s != "ok" for s in statuses):
        status = "down"
    elif any(s != "ok" for s in statuses):
        status = "degraded"
    else:
        status = "operational"
    latencies = [row["latency_ms"] for row in rows
                 if row["latency_ms"] is not None and row["type"] in _LATENCY_TYPES]
    measured = [hour[spec.name] for spec in specs if spec.type == "http" and spec.name in hour]
    counted = sum(s.count for s in measured)
    uptime = sum(s.ok for s in measured) / counted if counted else None
    p95s = [s.p95 for s in measured if s.p95 is not None]
    return {
        "name": name, "status": status, "checks": rows,
        "latency_ms": sum(latencies) / len(latencies) if latencies else None,
        "uptime_1h": uptime, "p95_1h_ms": max(p95s) if p95s else None,
        "error_rate_1h": _error_rate(store, [s.name for s in specs if s.type == "error_rate"],
                                     now),
    }


def _check_row(spec: CheckSpec[Any], result: CheckResult | None) -> dict[str, Any]:
    return {
        "name": spec.name, "type": spec.type,
        "status": result.status.value if result is not None else None,
        "latency_ms": result.latency_ms if result is not None else None,
        "message": result.message if result is not None else "no result yet",
        "values": dict(result.values) if result is not None else {},
        "at": result.started_at if result is not None else None,
    }


def _slo_row(spec: CheckSpec[Any], result: CheckResult | None) -> dict[str, Any]:
    values = dict(result.values) if result is not None else {}
    return {"name": spec.name.removeprefix("slo:"), "status": result.status.value if result
            else None, "sli": values.get("sli"), "budget_remaining": values.get(
                "budget_remaining"), "message": result.message if result else "not evaluated yet"}


def _error_rate(store: Store, checks: Sequence[str], now: float) -> float | None:
    rates = [value for check in checks for result in store.history(check, since=now - HOUR)
             if (value := result.values.get("error_rate")) is not None]
    return sum(rates) / len(rates) if rates else None


def _alert_counts(store: Store, now: float) -> dict[str, Any]:
    day: Counter[str] = Counter()
    week: Counter[str] = Counter()
    for event in store.alert_events(since=now - 7 * DAY, limit=EVENTS_LIMIT):
        if event.to_state is not AlertState.FIRING or event.from_state is AlertState.ACKNOWLEDGED:
            continue
        week[event.severity.value] += 1
        if event.at >= now - DAY:
            day[event.severity.value] += 1
    severities = [s.value for s in Severity]
    return {"24h": {**{s: day[s] for s in severities}, "total": sum(day.values())},
            "7d": {**{s: week[s] for s in severities}, "total": sum(week.values())}}


def hour_label(now: float) -> str:
    return datetime.fromtimestamp(now - now % HOUR, UTC).strftime("%Y-%m-%dT%H:00Z")


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("tocsin.reports", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                       lstrip_blocks=True)


def render_health_html(data: Mapping[str, Any]) -> str:
    def stamp(moment: float | None) -> str:
        if moment is None:
            return "—"
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")

    return _environment().get_template("health.html.j2").render(report=data, stamp=stamp)


class HealthReporter(ReportJob):
    """Builds, stores and prunes the health report every ``settings.every``, on the hour."""

    task_name = "tocsin-health-report"

    def __init__(self, store: Store, settings: HealthReportSettings,
                 checks: Callable[[], Sequence[CheckSpec[Any]]],
                 latest: Callable[[str], CheckResult | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.checks = checks
        self.latest = latest
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def run_once(self) -> StoredReport:
        now = self.clock()
        data = await asyncio.to_thread(build_health_report, self.store, self.checks(),
                                       self.latest, now)
        report = StoredReport("health", hour_label(now), now, data)
        await asyncio.to_thread(self.store.save_report, report)
        await asyncio.to_thread(self.store.prune_reports, "health", now - self.settings.keep)
        return report

    async def _run(self) -> None:
        every = self.settings.every
        while True:
            now = self.clock()
            await asyncio.sleep(every - now % every + 1.0)  # just after each boundary
            try:
                await self.run_once()
            except StoreError as error:
                log.error("health report: the store refused it; next at the next hour: %s",
                          error)

