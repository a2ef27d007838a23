"""SLOs as written under ``slos:``: an indicator, an objective, a window, and burn alerts.

Indicators::

    availability              the share of a service's HTTP check runs that were OK
    latency_pNN < X           the share of 5-minute windows whose pNN latency was under X
                              (from the rollup histograms), e.g. ``latency_p95 < 500ms``
    error_rate < X            the share of error_rate check runs whose rate was under X
    deploy_success            the share of finished deploys that went live

The objective is a percentage strictly between 0 and 100. The window is rolling
(``window: 30d``) or the calendar month (``calendar: month``, in ``timezone``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tocsin.alerting.model import Severity
from tocsin.alerting.rules import parse_severity
from tocsin.config.cron import TimeZoneName
from tocsin.config.durations import Duration, Percent, parse_duration

DEFAULT_WINDOW = 30 * 86400.0
MAX_WINDOW = 400 * 86400.0


class IndicatorKind(enum.Enum):
    AVAILABILITY = "availability"
    LATENCY = "latency"
    ERROR_RATE = "error_rate"
    DEPLOY_SUCCESS = "deploy_success"


@dataclass(frozen=True, slots=True)
class Indicator:
    """A parsed indicator: its kind, and for thresholds the percentile and the bound."""

    kind: IndicatorKind
    text: str
    percentile: float | None = None  # latency: 95 for p95
    threshold: float | None = None  # latency: ms; error_rate: percent (0-100)

    @property
    def time_based(self) -> bool:
        """Whether the budget is in minutes (windows) rather than in events."""
        return self.kind is IndicatorKind.LATENCY


_LATENCY = re.compile(r"latency_p(\d{1,2}(?:\.\d+)?)\s*<\s*(.+)")
_ERROR_RATE = re.compile(r"error_rate\s*<\s*(\d+(?:\.\d+)?)\s*%")


def parse_indicator(text: str) -> Indicator:
    """``availability``, ``latency_p95 < 500ms``, ``error_rate < 1%``, ``deploy_success``."""
    source = text.strip()
    for kind in (IndicatorKind.AVAILABILITY, IndicatorKind.DEPLOY_SUCCESS):
        if source == kind.value:
            return Indicator(kind, source)
    latency = _LATENCY.fullmatch(source)
    if latency:
        percentile = float(latency.group(1))
        if not 0 < percentile < 100:
            raise ValueError(f"percentile p{latency.group(1)} must be between p1 and p99.9")
        try:
            bound = parse_duration(latency.group(2).strip()) * 1000
        except ValueError:
            raise ValueError(f"latency bound {latency.group(2).strip()!r} is not a duration "
                             "(e.g. 500ms or 1.5s)") from None
        return Indicator(IndicatorKind.LATENCY, source, percentile, bound)
    error_rate = _ERROR_RATE.fullmatch(source)
    if error_rate:
        return Indicator(IndicatorKind.ERROR_RATE, source, threshold=float(error_rate.group(1)))
    raise ValueError(f"unknown indicator {source!r}: use availability, deploy_success, "
                     "'latency_p95 < 500ms' or 'error_rate < 1%'")


class BurnAlerts(BaseModel):
    """Burn-rate alerts of one SLO (the SRE Workbook's multiwindow pairs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page: Severity | None = Severity.P1
    ticket: Severity | None = Severity.P3

    @field_validator("page", "ticket", mode="before")
    @classmethod
    def _severity(cls, value: object) -> Severity | None:
        return None if value is None or value is False else parse_severity(value)


class SLOConfig(BaseModel):
    """One entry of ``slos:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    service: str = Field(min_length=1)  # a service name, or "*" (deploy_success only)
    indicator: str
    objective: Percent
    window: Duration | None = None
    calendar: Literal["month"] | None = None
    timezone: TimeZoneName = "UTC"
    checks: list[str] | None = None  # which of the service's checks; default: all that fit
    burn_alerts: BurnAlerts | Literal[False] = Field(default_factory=BurnAlerts)

    @field_validator("indicator")
    @classmethod
    def _indicator(cls, text: str) -> str:
        parse_indicator(text)
        return text

    @field_validator("objective")
    @classmethod
    def _objective(cls, fraction: float) -> float:
        if not 0.0 < fraction < 1.0:
            raise ValueError("the objective must be strictly between 0% and 100%, e.g. 99.9%")
        return fraction

    @model_validator(mode="after")
    def _window(self) -> SLOConfig:
        if self.window is not None and self.calendar is not None:
            raise ValueError("give either window (rolling) or calendar: month, not both")
        if self.window is not None and not 3600 <= self.window <= MAX_WINDOW:
            raise ValueError("window must be between 1h and 400d")
        if self.service == "*" and self.parsed_indicator.kind is not IndicatorKind.DEPLOY_SUCCESS:
            raise ValueError("service '*' (every service) is for deploy_success only")
        return self

    @property
    def parsed_indicator(self) -> Indicator:
        return parse_indicator(self.indicator)

    @property
    def rolling_window(self) -> float:
        """The window in seconds (a calendar month counts as 30 days for burn rates)."""
        return self.window if self.window is not None else DEFAULT_WINDOW

    @property
    def check_name(self) -> str:
        """The name of the internal check that evaluates this SLO: ``slo:<name>``."""
        return f"slo:{self.name}"
