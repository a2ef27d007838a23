"""What a monthly SLA report says, independent of how it is rendered (HTML, PDF, Markdown).

:mod:`tocsin.reports.sla` builds a :class:`SLAReport` from the store;
:mod:`tocsin.reports.render` turns one into a document. Times are epoch
seconds; percentages are fractions (0.999) except ``error_rate``, which is in
percent like the checks report it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class IncidentRow:
    service: str
    severity: str
    opened_at: float
    closed_at: float | None  # None: still open at the end of the month
    duration_s: float  # within the month
    summary: str


@dataclass(frozen=True, slots=True)
class SLORow:
    name: str
    indicator: str
    objective: float  # 0.999
    sli: float | None  # None: no data
    met: bool | None
    unit: str  # minutes or events
    budget_allowed: float
    budget_used: float

    @property
    def budget_used_share(self) -> float | None:
        return self.budget_used / self.budget_allowed if self.budget_allowed > 0 else None


@dataclass(frozen=True, slots=True)
class DayPoint:
    day: date
    uptime: float | None  # fraction; None: nothing measured that day
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class ServiceSLA:
    name: str
    uptime: float | None  # fraction over the month; None: nothing measured
    downtime_minutes: float
    checks: int  # runs measured
    p95_ms: float | None
    error_rate: float | None  # percent, mean of the error_rate checks
    deploys_ok: int
    deploys_total: int
    incidents: list[IncidentRow] = field(default_factory=list)
    slos: list[SLORow] = field(default_factory=list)
    days: list[DayPoint] = field(default_factory=list)

    @property
    def deploy_success(self) -> float | None:
        return self.deploys_ok / self.deploys_total if self.deploys_total else None


@dataclass(frozen=True, slots=True)
class SLAReport:
    title: str
    month: str  # 2026-10
    timezone: str
    start: float
    end: float
    generated_at: float
    services: list[ServiceSLA]

    @property
    def has_data(self) -> bool:
        return any(service.checks > 0 or service.deploys_total > 0 or service.incidents
                   for service in self.services)


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A report as kept in the store: its kind, what it covers, and its figures as JSON data."""

    kind: str  # health, sla, alerts
    period: str  # "2026-10" for a month, the ISO time of an hour
    created_at: float
    data: dict[str, object]
    id: int | None = None
