"""``GET /metrics``: Tocsin's state in the Prometheus exposition format.

Nothing is counted while checks run: at each scrape :func:`take_snapshot`
copies what the runtime already holds (the latest result of each check, the
alerts in memory, the scheduler's and the result writer's counters, the
heartbeat book) on the event loop, and :class:`SnapshotCollector` turns the
copy into metric families in a worker thread, so a large scrape does not stall
the scheduler. The one store query, the outbox's pending count, is cached for
:data:`OUTBOX_CACHE_TTL` seconds.

``/metrics`` is authorised like the API's reads (:func:`~tocsin.web.auth.require_read`):
give Prometheus a read token (``authorization: {credentials: tcn_…}`` in its
scrape config); with nothing configured it is open to loopback.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tocsin.alerting.model import AlertState, DeliveryStatus, Severity
from tocsin.probes import CheckResult, CheckSpec, CheckStatus
from tocsin.store import StoreError
from tocsin.web.auth import require_read

if TYPE_CHECKING:
    from tocsin.runtime import Runtime

log = logging.getLogger("tocsin.web.prometheus")

OUTBOX_CACHE_TTL = 15.0  # seconds the outbox's pending count is reused between scrapes


@dataclass(frozen=True, slots=True)
class HeartbeatSample:
    check: str
    service: str
    up: bool
    last_ping_at: float | None


@dataclass(slots=True)
class Snapshot:
    """What one scrape reports, copied from the runtime on the event loop."""

    checks: list[tuple[CheckSpec[Any], CheckResult | None]] = field(default_factory=list)
    firing: Counter[Severity] = field(default_factory=Counter)
    heartbeats: list[HeartbeatSample] = field(default_factory=list)
    scheduler_runs: int | None = None
    lag_p99: float = 0.0
    lag_max: float = 0.0
    store_pending: int | None = None
    store_dropped: int = 0
    store_available: bool = True
    outbox_pending: int | None = None


def take_snapshot(runtime: Runtime, outbox_pending: int | None) -> Snapshot:
    """Copy the runtime's state; cheap (references, no formatting), so run it on the loop."""
    snap = Snapshot(outbox_pending=outbox_pending)
    snap.checks = [(spec, runtime.latest.get(spec.name)) for spec in runtime.checks]
    engine = runtime.engine
    if engine is not None:
        snap.firing.update(alert.severity for alert in engine.alerts.values()
                           if alert.state is AlertState.FIRING)
    scheduler = runtime.scheduler
    if scheduler is not None:
        lag = scheduler.stats.lag()
        snap.scheduler_runs, snap.lag_p99, snap.lag_max = scheduler.stats.runs, lag.p99, lag.max
    writer = runtime.writer
    if writer is not None:
        snap.store_pending, snap.store_dropped = writer.pending, writer.dropped
        snap.store_available = writer.available
    book, now = runtime.context.heartbeats, time.time()
    for name in book.names():
        spec, assessment = book.spec(name), book.assess(name, now)
        if spec is None or assessment is None:
            continue
        last = assessment.details.get("last_ping")
        at = last.get("at") if isinstance(last, dict) else None
        snap.heartbeats.append(HeartbeatSample(
            check=name, service=spec.service or "", up=assessment.status is CheckStatus.OK,
            last_ping_at=float(at) if isinstance(at, int | float) else None))
    return snap


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class SnapshotCollector(Collector):
    """Metric families of one :class:`Snapshot`."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield from self._checks(snap)
        firing = GaugeMetricFamily("tocsin_alerts_firing", "Alerts firing (not acknowledged).",
                                   labels=["severity"])
        for severity in Severity:
            firing.add_metric([severity.value], snap.firing.get(severity, 0))
        yield firing
        yield from self._heartbeats(snap)
        if snap.scheduler_runs is not None:
            lag = GaugeMetricFamily("tocsin_scheduler_lag_seconds",
                                    "Delay of check runs behind their due time over recent "
                                    "runs (quantile 1 is the maximum since start).",
                                    labels=["quantile"])
            lag.add_metric(["0.99"], snap.lag_p99)
            lag.add_metric(["1"], snap.lag_max)
            yield lag
            yield CounterMetricFamily("tocsin_scheduler_runs", "Check runs started.",
                                      value=snap.scheduler_runs)
        if snap.outbox_pending is not None:
            yield GaugeMetricFamily("tocsin_outbox_pending",
                                    "Notifications waiting in the outbox to be delivered.",
                                    value=snap.outbox_pending)
        if snap.store_pending is not None:
            yield GaugeMetricFamily("tocsin_store_buffer_depth",
                                    "Results waiting in memory to be written to the store.",
                                    value=snap.store_pending)
            yield CounterMetricFamily("tocsin_store_dropped",
                                      "Results dropped because the store buffer was full.",
                                      value=snap.store_dropped)
            yield GaugeMetricFamily("tocsin_store_available",
                                    "1 while the store accepts writes.",
                                    value=int(snap.store_available))

    def _checks(self, snap: Snapshot) -> Iterator[Metric]:
        labels = ["check", "service", "type"]
        up = GaugeMetricFamily("tocsin_check_up", "1 when the check's latest result is ok.",
                               labels=labels)
        latency = GaugeMetricFamily("tocsin_check_latency_seconds",
                                    "Duration of the check's latest run.", labels=labels)
        last_run = GaugeMetricFamily("tocsin_check_last_run_timestamp_seconds",
                                     "When the check's latest run started.", labels=labels)
        tls = GaugeMetricFamily("tocsin_tls_days_left",
                                "Days until the certificate expires (negative once expired).",
                                labels=["check"])
        value = GaugeMetricFamily("tocsin_metric_value",
                                  "The latest value of a metric check (pulled or pushed).",
                                  labels=["check", "service"])
        for spec, result in snap.checks:
            if result is None:
                continue
            key = [spec.name, spec.service or "", spec.type]
            up.add_metric(key, 1 if result.status is CheckStatus.OK else 0)
            last_run.add_metric(key, result.started_at)
            if result.latency_ms is not None:
                latency.add_metric(key, result.latency_ms / 1000)
            if spec.type == "tls" and (days := _number(result.values.get("days_left"))) \
                    is not None:
                tls.add_metric([spec.name], days)
            if spec.type == "metric" and (number := _number(result.values.get("value"))) \
                    is not None:
                value.add_metric([spec.name, spec.service or ""], number)
        yield from (up, latency, last_run, tls, value)

    def _heartbeats(self, snap: Snapshot) -> Iterator[Metric]:
        up = GaugeMetricFamily("tocsin_heartbeat_up",
                               "1 when the heartbeat's job pinged in time and succeeded.",
                               labels=["check", "service"])
        last = GaugeMetricFamily("tocsin_heartbeat_last_ping_timestamp_seconds",
                                 "When the heartbeat was last pinged.",
                                 labels=["check", "service"])
        for sample in snap.heartbeats:
            up.add_metric([sample.check, sample.service], int(sample.up))
            if sample.last_ping_at is not None:
                last.add_metric([sample.check, sample.service], sample.last_ping_at)
        yield from (up, last)


def render(snapshot: Snapshot) -> bytes:
    """The exposition text of ``snapshot`` (CPU-bound: call it in a thread)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)


class OutboxCount:
    """The outbox's pending count from the store, asked at most every ``ttl`` seconds."""

    def __init__(self, runtime: Runtime, ttl: float = OUTBOX_CACHE_TTL) -> None:
        self.runtime = runtime
        self.ttl = ttl
        self._value: int | None = None
        self._at = -math.inf

    async def get(self) -> int | None:
        now = time.monotonic()
        store = self.runtime.store
        if store is not None and now - self._at >= self.ttl:
            self._at = now
            try:
                _, self._value = await asyncio.to_thread(
                    store.list_deliveries, DeliveryStatus.PENDING, None, 1, 0)
            except StoreError as error:  # the rest of the scrape is still worth having
                log.warning("metrics: cannot count the outbox: %s", error)
                self._value = None
        return self._value


def prometheus_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    outbox = OutboxCount(runtime)

    @router.get("/metrics", dependencies=[Depends(require_read)], include_in_schema=False)
    async def metrics() -> Response:
        snapshot = take_snapshot(runtime, await outbox.get())
        body = await asyncio.to_thread(render, snapshot)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
