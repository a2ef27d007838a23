"""The ``reports:`` section: the hourly health report and the monthly SLA report's schedule."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tocsin.config.cron import CronExpression, TimeZoneName
from tocsin.config.durations import Duration

MIN_HEALTH_EVERY = 300.0


class HealthReportSettings(BaseModel):
    """``reports.health``: every ``every``, a health report is built and stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    every: Duration = 3600.0
    keep: Duration = 90 * 86400.0  # stored health reports older than this are pruned

    @field_validator("every")
    @classmethod
    def _every(cls, seconds: float) -> float:
        if seconds < MIN_HEALTH_EVERY:
            raise ValueError("reports.health.every must be at least 5m")
        return seconds


class SLAReportSettings(BaseModel):
    """``reports.sla``: on ``schedule``, last month's SLA report goes to ``channels``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: CronExpression | None = None  # e.g. "0 8 1 * *": 08:00 on the 1st
    timezone: TimeZoneName = "UTC"
    channels: list[str] = Field(default_factory=list)
    format: Literal["pdf", "html", "md"] = "pdf"
    title: str = Field(default="Service level report", min_length=1, max_length=200)


class ReportsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    health: HealthReportSettings = Field(default_factory=HealthReportSettings)
    sla: SLAReportSettings = Field(default_factory=SLAReportSettings)
