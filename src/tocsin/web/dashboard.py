"""The dashboard: server-rendered pages for a signed-in admin, with a little JavaScript.

Pages: ``/`` (services and checks, live over SSE), ``/checks/<name>`` (charts
and history of one check), ``/alerts`` (open alerts, incidents, silences, with
ack and silence buttons) and ``/operations`` (host resources, remediation log,
channel health). Buttons call the JSON API with the session's CSRF token; the
pages hold no inline script or style (see the Content-Security-Policy in
:mod:`tocsin.web.security`). :func:`include_pages` mounts all of it, the
status page and the badges on the app.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from tocsin.alerting.model import AlertState, DeliveryStatus, SilenceState
from tocsin.alerting.silences import format_matcher
from tocsin.web.auth import admin_password_set, csrf_token, require_session
from tocsin.web.badges import badges_router
from tocsin.web.events import StateFeed, events_router
from tocsin.web.history_api import history_router
from tocsin.web.status import StatusBoard, settings_of, status_router
from tocsin.web.views import (
    PAGE_SIZE,
    STATIC_DIR,
    State,
    SummaryCache,
    check_row,
    overview_rows,
    paginate,
    service_name,
    service_rows,
    templates,
)

if TYPE_CHECKING:
    from tocsin.runtime import Runtime

HISTORY_SHOWN = 100  # latest results in a check's state history
ALERTS_SHOWN = 200
LOG_PAGE = 50  # remediation attempts per page


def include_pages(app: FastAPI, runtime: Runtime) -> StateFeed:
    """Mount the static files and every page router; returns the SSE feed (tests watch it)."""
    uptimes = SummaryCache(runtime)
    feed = StateFeed(runtime)
    board = StatusBoard(runtime)

    async def status_access(request: Request) -> None:
        if not settings_of(runtime).public:
            await require_session(request)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(dashboard_router(runtime, uptimes, feed))
    app.include_router(history_router(runtime, uptimes))
    app.include_router(events_router(feed))
    app.include_router(status_router(runtime, board, status_access))
    app.include_router(badges_router(runtime, status_access))
    app.state.state_feed = feed  # for tests and the benchmark
    app.state.status_board = board
    app.state.uptimes = uptimes
    if runtime.store is not None:  # read what the first pages need before anyone asks
        board.daily.warm(runtime)
        uptimes.refresh_in_background()
    return feed


def dashboard_router(runtime: Runtime, uptimes: SummaryCache, feed: StateFeed) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_session)], include_in_schema=False)
    pages = templates()

    def render(request: Request, name: str, status_code: int = 200,
               **context: Any) -> HTMLResponse:
        context.update(request=request, csrf=csrf_token(request), now=time.time(),
                       password_set=admin_password_set(request), section=name)
        response = pages.TemplateResponse(request, f"{name}.html", context,
                                          status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request, service: str | None = None,
                       state: State | None = None, q: str = Query("", max_length=200),
                       page: int = Query(1, ge=1, le=1_000_000)) -> HTMLResponse:
        feed.attach()  # before the page is rendered: its changes are then all in the feed
        rows = overview_rows(runtime, await uptimes.get(), service=service, state=state,
                             search=q)
        shown = paginate(rows, page, PAGE_SIZE)
        return render(request, "overview", services=service_rows(runtime), page=shown,
                      filters={"service": service or "", "state": state.value if state else "",
                               "q": q},
                      states=[s.value for s in State],
                      service_names=sorted({service_name(s) for s in runtime.checks}),
                      status_code=200)

    @router.get("/checks/{name:path}", response_class=HTMLResponse)
    async def check_page(request: Request, name: str) -> HTMLResponse:
        spec = next((spec for spec in runtime.checks if spec.name == name), None)
        if spec is None:
            raise HTTPException(404, f"no check {name!r}")
        store = runtime.require_store()
        now = time.time()
        history = await asyncio.to_thread(store.history, name, None, None, HISTORY_SHOWN)
        windows = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
        summaries = {label: (await asyncio.to_thread(store.summary, [name], now - seconds,
                                                     now))[name]
                     for label, seconds in windows.items()}
        alerts, _ = await asyncio.to_thread(store.list_alerts, None, spec.service, 50, 0)
        return render(request, "check", check=check_row(spec, runtime.latest.get(name),
                                                         summaries["24h"]),
                      spec=spec, history=history, summaries=summaries,
                      alerts=[a for a in alerts if a.check == name])

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts_page(request: Request) -> HTMLResponse:
        store = runtime.require_store()
        now = runtime.clock.now()
        firing, _ = await asyncio.to_thread(store.list_alerts, AlertState.FIRING, None,
                                            ALERTS_SHOWN, 0)
        acked, _ = await asyncio.to_thread(store.list_alerts, AlertState.ACKNOWLEDGED, None,
                                           ALERTS_SHOWN, 0)
        incidents = await asyncio.to_thread(store.load_incidents, True)
        silences = await asyncio.to_thread(store.list_silences, now)
        silences = [s for s in silences if s.state(now) is not SilenceState.EXPIRED]
        return render(request, "alerts", alerts=sorted(
            firing + acked, key=lambda a: (a.severity.rank, -(a.fired_at or 0))),
            incidents=incidents, silences=silences, silence_state=lambda s: s.state(now).value,
            matcher_text=lambda s: ", ".join(format_matcher(m) for m in s.matchers))

    @router.get("/operations", response_class=HTMLResponse)
    async def operations(request: Request, page: int = Query(1, ge=1, le=1_000_000)
                         ) -> HTMLResponse:
        store = runtime.require_store()
        host = [check_row(spec, runtime.latest.get(spec.name), None) for spec in runtime.checks
                if spec.type == "system"]
        host_values = {spec.name: runtime.latest.get(spec.name) for spec in runtime.checks
                       if spec.type == "system"}
        attempts, total = await asyncio.to_thread(store.list_attempts, None, None, LOG_PAGE,
                                                  (page - 1) * LOG_PAGE)
        disabled = await asyncio.to_thread(store.disabled_services)
        return render(request, "operations", host=host, host_values=host_values,
                      attempts=attempts, attempts_total=total, attempts_page=page,
                      attempts_pages=max(1, math.ceil(total / LOG_PAGE)),
                      disabled=list(disabled.values()),
                      channels=await _channel_health(runtime))

    return router


async def _channel_health(runtime: Runtime) -> list[dict[str, Any]]:
    """Each channel: failing or not, last success and error, pending and failed counts."""
    stage = runtime.alerting
    if stage is None:
        return []
    store = runtime.require_store()
    rows = []
    for name, channel in sorted(stage.sender.channels.items()):
        health = stage.sender.health.get(name)
        _, pending = await asyncio.to_thread(store.list_deliveries, DeliveryStatus.PENDING,
                                             name, 1, 0)
        _, failed = await asyncio.to_thread(store.list_deliveries, DeliveryStatus.FAILED,
                                            name, 1, 0)
        rows.append({"name": name, "type": channel.type,
                     "failing": bool(health and health.failing),
                     "last_success_at": health.last_success_at if health else None,
                     "last_error": health.last_error if health else None,
                     "last_error_at": health.last_error_at if health else None,
                     "pending": pending, "failed": failed})
    return rows
