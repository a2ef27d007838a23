"""The public status page at ``/status``: services, 90 days of daily uptime, incidents, maintenance.

What it shows is configured under ``status_page:`` (title, logo, services,
public). The page is built at most every :data:`STATUS_TTL` seconds and served
from memory in between. A closed day's uptime never changes, so each day is
read from the store's daily rollups once and kept; only today's is re-read.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from tocsin.alerting.model import Alert, AlertState, Incident
from tocsin.config.cron import next_fire
from tocsin.config.model import StatusPageSettings
from tocsin.store.base import StoreError
from tocsin.store.rollups import Summary
from tocsin.web.views import (
    State,
    measures_service,
    service_name,
    service_rows,
    service_state,
    state_of,
    templates,
)

if TYPE_CHECKING:
    from tocsin.runtime import Runtime
    from tocsin.store import Store

log = logging.getLogger("tocsin.web")

STATUS_TTL = 30.0  # seconds a built status page is served before it is built again
DAYS = 90
DAY = 86400
INCIDENTS_SHOWN = 20
MAINTENANCE_AHEAD = 7 * DAY  # announce maintenance windows that start within a week


@dataclass(frozen=True, slots=True)
class DayBar:
    """One day of one service: its uptime and the class that colours its bar."""

    start: float
    uptime: float | None

    @property
    def level(self) -> str:
        if self.uptime is None:
            return "none"
        if self.uptime >= 0.999:
            return "ok"
        if self.uptime >= 0.99:
            return "minor"
        return "major" if self.uptime >= 0.95 else "down"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    state: State
    uptime: float | None  # over the days shown
    bars: list[DayBar]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: float
    label: str
    text: str


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: str
    service: str
    severity: str
    opened_at: float
    closed_at: float | None
    title: str
    timeline: list[TimelineEntry]


@dataclass(frozen=True, slots=True)
class MaintenanceView:
    name: str
    comment: str
    services: list[str]
    starts_at: float
    ends_at: float
    active: bool


@dataclass(frozen=True, slots=True)
class StatusView:
    """Everything the page shows, built at ``generated_at``."""

    title: str
    logo: str | None
    overall: State
    services: list[ServiceStatus]
    incidents: list[IncidentView]
    maintenance: list[MaintenanceView]
    generated_at: float


def settings_of(runtime: Runtime) -> StatusPageSettings:
    return runtime.loaded.config.status_page if runtime.loaded else StatusPageSettings()


def shown_services(runtime: Runtime) -> list[str]:
    """The services the status page shows: those configured, in order, else every one."""
    settings = settings_of(runtime)
    present = {service_name(spec) for spec in runtime.checks}
    if settings.services is not None:
        return [name for name in settings.services if name in present]
    return sorted(present)


class DailyUptimes:
    """Per-check summaries of each day; closed days are read once and kept.

    The closed days come from the store's daily tier in one query (about 0.3 s
    for 5,000 checks × 90 days), which :meth:`warm` makes in a background thread
    when the web app starts; today is read again at each rebuild.
    """

    def __init__(self) -> None:
        self._closed: dict[int, dict[str, Summary]] = {}
        self._checks: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self.warmed = threading.Event()  # set when the warm-up read has ended

    def read(self, store: Store, checks: frozenset[str], now: float,
             days: int = DAYS) -> dict[int, dict[str, Summary]]:
        """Day number → check → summary, for the ``days`` days up to today (runs in a thread)."""
        today = int(now // DAY)
        with self._lock:
            if checks != self._checks:
                self._closed, self._checks = {}, checks
            first = today - days + 1
            missing = [day for day in range(first, today) if day not in self._closed]
            if missing:
                found = store.daily_summaries(checks, missing[0], missing[-1] + 1)
                for day in missing:
                    self._closed[day] = found.get(day, {})
            for day in [day for day in self._closed if day < first]:
                del self._closed[day]
            answer = dict(self._closed)
        answer[today] = store.summary(checks, today * DAY, now, latency=False)
        return answer

    def warm(self, runtime: Runtime) -> None:
        """Read the closed days in a daemon thread, so that the first page is served quickly."""
        def work() -> None:
            store = runtime.store
            if store is None:
                return
            try:
                checks = frozenset(spec.name for spec in runtime.checks
                                   if service_name(spec) in set(shown_services(runtime))
                                   and measures_service(spec))
                self.read(store, checks, time.time())
            except StoreError as error:  # closed while reading (a quick stop), or down
                log.info("status page: daily uptimes not prepared: %s", error)
            finally:
                self.warmed.set()

        threading.Thread(target=work, name="tocsin-status-warm", daemon=True).start()


class StatusBoard:
    """Builds the status page's view at most every ``ttl`` seconds."""

    def __init__(self, runtime: Runtime, ttl: float = STATUS_TTL) -> None:
        self.runtime = runtime
        self.ttl = ttl
        self.daily = DailyUptimes()
        self._view: StatusView | None = None
        self._html: bytes | None = None
        self._built_at = 0.0
        self._lock = asyncio.Lock()
        self._templates = templates()

    async def view(self) -> StatusView:
        await self._refresh()
        assert self._view is not None
        return self._view

    async def html(self) -> bytes:
        await self._refresh()
        assert self._html is not None
        return self._html

    async def _refresh(self) -> None:
        if self._view is not None and time.monotonic() - self._built_at < self.ttl:
            return
        async with self._lock:
            if self._view is not None and time.monotonic() - self._built_at < self.ttl:
                return  # built by another request while this one waited
            view = await asyncio.to_thread(self._build, time.time())
            template = self._templates.get_template("status.html")
            self._html = template.render(page=view, days=DAYS).encode()
            self._view, self._built_at = view, time.monotonic()

    def _build(self, now: float) -> StatusView:
        runtime, store = self.runtime, self.runtime.require_store()
        settings = settings_of(runtime)
        names = shown_services(runtime)
        specs = [spec for spec in runtime.checks
                 if service_name(spec) in names and measures_service(spec)]
        by_day = self.daily.read(store, frozenset(spec.name for spec in specs), now)
        services = []
        states = {row.name: row.state for row in service_rows(runtime, names)}
        for name in names:
            checks = [spec.name for spec in specs if service_name(spec) == name]
            bars, ok_all, count_all = [], 0, 0
            for day in sorted(by_day):
                ok = count = 0
                for check in checks:
                    summary = by_day[day].get(check)
                    if summary is not None:
                        ok, count = ok + summary.ok, count + summary.count
                bars.append(DayBar(day * DAY, ok / count if count else None))
                ok_all, count_all = ok_all + ok, count_all + count
            services.append(ServiceStatus(name, states.get(name, State.UNKNOWN),
                                          ok_all / count_all if count_all else None, bars))
        overall = service_state(
            state_of(runtime.latest.get(spec.name)) for spec in specs)
        return StatusView(
            title=settings.title, logo=self._logo_url(settings), overall=overall,
            services=services, incidents=self._incidents(store, set(names), now),
            maintenance=self._maintenance(names, now), generated_at=now)

    @staticmethod
    def _logo_url(settings: StatusPageSettings) -> str | None:
        if settings.logo is None:
            return None
        return settings.logo if settings.logo.startswith("/static/") else "/status/logo"

    def _incidents(self, store: Store, services: set[str], now: float) -> list[IncidentView]:
        """The latest incidents of the shown services within the window, newest first."""
        since = now - DAYS * DAY
        incidents = [i for i in store.load_incidents(open_only=False)
                     if i.service in services and i.opened_at >= since]
        incidents = sorted(incidents, key=lambda i: i.opened_at, reverse=True)[:INCIDENTS_SHOWN]
        if not incidents:
            return []
        wanted = {incident.id for incident in incidents}
        alerts: dict[str, list[Alert]] = {}
        for service in {incident.service for incident in incidents}:
            found, _ = store.list_alerts(None, service, 1000, 0)
            for alert in found:
                if alert.incident_id in wanted:
                    alerts.setdefault(alert.incident_id, []).append(alert)
        fingerprints = {a.fingerprint: a for group in alerts.values() for a in group}
        events = [event for event in store.alert_events(
            since=min(i.opened_at for i in incidents) - DAY, limit=10_000)
            if event.fingerprint in fingerprints]
        return [_incident_view(incident, alerts.get(incident.id, []), events)
                for incident in incidents]

    def _maintenance(self, services: Sequence[str], now: float) -> list[MaintenanceView]:
        if self.runtime.loaded is None:
            return []
        labels = [{"service": service_name(spec), "check": spec.name}
                  for spec in self.runtime.checks if service_name(spec) in services]
        announced = []
        for window in self.runtime.loaded.config.maintenance:
            hit = sorted({found["service"] for found in labels if window.matches(found)})
            if not hit:
                continue
            if window.active(now):
                start = window.last_start(now)
                announced.append(MaintenanceView(window.name, window.comment, hit, start,
                                                 start + window.duration, True))
                continue
            start = next_fire(window.schedule, window.timezone, now)
            if start - now <= MAINTENANCE_AHEAD:
                announced.append(MaintenanceView(window.name, window.comment, hit, start,
                                                 start + window.duration, False))
        return sorted(announced, key=lambda m: m.starts_at)


_EVENT_LABELS = {AlertState.FIRING: "Identified", AlertState.ACKNOWLEDGED: "Investigating",
                 AlertState.RESOLVED: "Resolved"}


def _incident_view(incident: Incident, alerts: list[Alert], events: Sequence[Any]) -> IncidentView:
    by_fingerprint = {alert.fingerprint: alert for alert in alerts}
    timeline = [TimelineEntry(incident.opened_at, "Opened",
                              f"{incident.service}: a problem was detected")]
    for event in events:
        alert = by_fingerprint.get(event.fingerprint)
        label = _EVENT_LABELS.get(event.to_state)
        if alert is None or label is None:
            continue
        text = alert.summary or f"{alert.check}: {alert.rule}"
        if event.to_state is AlertState.ACKNOWLEDGED:
            text = f"{text} (we are working on it)"
        timeline.append(TimelineEntry(event.at, label, text))
    if incident.closed_at is not None:
        timeline.append(TimelineEntry(incident.closed_at, "Closed", "All checks are passing."))
    timeline.sort(key=lambda entry: entry.at)
    title = alerts[0].summary if alerts and alerts[0].summary else f"{incident.service} problem"
    return IncidentView(id=incident.id, service=incident.service,
                        severity=incident.severity.label, opened_at=incident.opened_at,
                        closed_at=incident.closed_at, title=title, timeline=timeline)


def logo_path(runtime: Runtime) -> Path | None:
    """The logo's file, relative paths resolved from the config file's folder."""
    logo = settings_of(runtime).logo
    if logo is None or logo.startswith("/static/"):
        return None
    path = Path(logo)
    if not path.is_absolute() and runtime.config_path is not None:
        path = runtime.config_path.parent / path
    return path


def status_router(runtime: Runtime, board: StatusBoard, access: Any) -> APIRouter:
    """``access`` is the dependency that lets a reader in (everyone, when the page is public)."""
    router = APIRouter(dependencies=[Depends(access)])

    @router.get("/status", response_class=HTMLResponse)
    async def status_page() -> Response:
        return Response(await board.html(), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": f"public, max-age={int(board.ttl)}"})

    @router.get("/status/logo")
    async def status_logo(request: Request) -> Response:
        path = logo_path(runtime)
        if path is None or not path.is_file():
            raise HTTPException(404, "no logo is configured")
        media, _ = mimetypes.guess_type(path.name)
        if media is None or not media.startswith("image/") or media == "image/svg+xml":
            # An SVG may carry script; serve only raster images.
            raise HTTPException(404, "the logo must be a PNG, JPEG, GIF or WebP image")
        return FileResponse(path, media_type=media,
                            headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/api/v1/status")
    async def status_json() -> dict[str, Any]:
        """The status page as JSON."""
        view = await board.view()
        return {
            "title": view.title, "state": view.overall.value, "generated_at": view.generated_at,
            "services": [{"name": s.name, "state": s.state.value, "uptime_90d": s.uptime,
                          "days": [{"start": b.start, "uptime": b.uptime} for b in s.bars]}
                         for s in view.services],
            "incidents": [{"id": i.id, "service": i.service, "severity": i.severity,
                           "opened_at": i.opened_at, "closed_at": i.closed_at, "title": i.title,
                           "timeline": [{"at": e.at, "label": e.label, "text": e.text}
                                        for e in i.timeline]} for i in view.incidents],
            "maintenance": [{"name": m.name, "comment": m.comment, "services": m.services,
                             "starts_at": m.starts_at, "ends_at": m.ends_at,
                             "active": m.active} for m in view.maintenance],
        }

    return router
