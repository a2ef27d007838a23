"""The book of pushed metric points: the newest point each ``metric`` check has been sent.

``POST /api/v1/metrics`` parses a batch at the edge into :class:`MetricPoint`
values, finds the checks each point is for (:class:`PushSelector`) and records
it here; the ``metric`` check with ``push:`` reads its newest point at each
run. The book lives in memory, on the :class:`~tocsin.probes.context.ProbeContext`:
points are measurements in flight, and the check's results are what is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One pushed measurement: ``timestamp`` is when it was measured (epoch seconds)."""

    name: str
    value: float
    labels: Mapping[str, str]
    timestamp: float


@dataclass(frozen=True, slots=True)
class PushSelector:
    """What one push check listens for: a metric name, and labels a point must carry."""

    check: str
    metric: str
    match: Mapping[str, str]

    def matches(self, point: MetricPoint) -> bool:
        """The point has this name and includes every label of ``match`` (more are fine)."""
        return point.name == self.metric and all(
            point.labels.get(key) == value for key, value in self.match.items())


@dataclass(frozen=True, slots=True)
class LatestPoint:
    """A check's newest point (by its timestamp), and when a matching point last arrived."""

    point: MetricPoint
    received_at: float


class PushedMetrics:
    """The newest matching point per check, and when the book began (for absence after a start)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.started_at = clock()
        self._latest: dict[str, LatestPoint] = {}

    def record(self, check: str, point: MetricPoint, received_at: float) -> None:
        """Keep ``point`` if it is newer than the check's; a late older point still shows life."""
        held = self._latest.get(check)
        if held is not None and held.point.timestamp > point.timestamp:
            point = held.point
        self._latest[check] = LatestPoint(point, received_at)

    def latest(self, check: str) -> LatestPoint | None:
        return self._latest.get(check)

    def forget_except(self, checks: set[str]) -> None:
        """Drop the points of checks no longer configured (after a reload)."""
        for check in set(self._latest) - checks:
            del self._latest[check]
