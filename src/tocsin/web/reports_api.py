"""SLOs and reports over the JSON API (and as HTML, PDF, Markdown documents).

- ``GET /api/v1/slos`` — each SLO with its latest evaluation (SLI, budget, burn rates);
- ``GET /api/v1/reports/health/latest`` — the newest stored health report
  (``?format=html`` for the page), ``GET /api/v1/reports/health`` — a page of them;
- ``GET /api/v1/reports/sla?month=2026-10&format=json|html|pdf|md`` — the SLA report;
- ``GET /api/v1/reports/alerts?since=30d`` — the alert review.

Documents are standalone (their CSS inline), so they carry their own
Content-Security-Policy: no scripts at all, inline styles only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from tocsin.alerting.model import Severity
from tocsin.config.durations import parse_duration
from tocsin.reports.alerts import review_alerts
from tocsin.reports.health import render_health_html
from tocsin.reports.render import render_html, render_markdown, render_pdf
from tocsin.reports.sla import ReportError, build_sla_report, previous_month
from tocsin.slo.probe import SLOCheckConfig
from tocsin.web.auth import require_read
from tocsin.web.paging import MAX_LIMIT, PageParams, Paging

if TYPE_CHECKING:
    from tocsin.runtime import Runtime

BURN_SERIES = 86400.0  # the burn chart's span
BURN_POINTS = 1440  # one evaluation a minute
HEALTH_REPORTS_SCAN = 100_000  # health reports read to count them (11 years of hourly ones)
DOCUMENT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def reports_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_read)])

    @router.get("/api/v1/slos")
    async def list_slos(page: PageParams, service: str | None = None) -> dict[str, Any]:
        """Every SLO, its objective and window, its latest evaluation and its burn over a day.

        Fractions are 0–1 (``objective``, ``sli``, ``budget_remaining``); ``burn`` is
        ``[[time, 1-hour burn rate], …]`` over the last 24 hours, from the SLO check's results.
        """
        now = time.time()
        specs = [spec for spec in runtime.checks if isinstance(spec.config, SLOCheckConfig)
                 and (service is None or spec.config.slo.service == service)]
        items = []
        for spec in page.cut(specs):  # the burn series is read for this page's SLOs only
            assert isinstance(spec.config, SLOCheckConfig)
            slo = spec.config.slo
            latest = runtime.latest.get(spec.name)
            values = dict(latest.values) if latest else {}
            history = await asyncio.to_thread(runtime.require_store().history, spec.name,
                                              now - BURN_SERIES, None, BURN_POINTS)
            items.append({
                "name": slo.name, "service": slo.service, "indicator": slo.indicator,
                "objective": slo.objective,
                "window": "calendar month" if slo.calendar else f"{slo.rolling_window / 86400:g}d",
                "checks": list(spec.config.checks), "check": spec.name,
                "status": latest.status.value if latest else None,
                "message": latest.message if latest else "not evaluated yet",
                "sli": values["sli"] / 100 if "sli" in values else None,
                "budget_remaining": (values["budget_remaining"] / 100
                                     if "budget_remaining" in values else None),
                "burn": [[r.started_at, r.values["burn_1h"]] for r in reversed(history)
                         if "burn_1h" in r.values],
                "values": values, "details": dict(latest.details) if latest else {},
                "evaluated_at": latest.started_at if latest else None,
            })
        return page.answer(len(specs), items)

    @router.get("/api/v1/reports/health/latest", response_model=None)
    async def latest_health(format: Literal["json", "html"] = "json") -> Any:
        """The newest stored health report (one is made every ``reports.health.every``)."""
        found = await asyncio.to_thread(runtime.require_store().list_reports, "health", None,
                                        None, 1)
        if not found:
            raise HTTPException(404, "no health report yet: the first is made on the hour")
        report = found[0]
        if format == "html":
            return _document(HTMLResponse(render_health_html(report.data)))
        return {"id": report.id, "period": report.period, "created_at": report.created_at,
                **report.data}

    @router.get("/api/v1/reports/health")
    async def list_health(since: float | None = None, until: float | None = None,
                          limit: int = Query(24, ge=1, le=MAX_LIMIT),
                          offset: int = Query(0, ge=0)) -> dict[str, Any]:
        """Stored health reports, newest first (24 a page: a day of hourly reports)."""
        # Retention (reports.health.keep, 90 days: ~2,200 hourly reports) keeps them few
        # enough to count by reading them; the store has no count of reports.
        found = await asyncio.to_thread(runtime.require_store().list_reports, "health", since,
                                        until, HEALTH_REPORTS_SCAN)
        return Paging(limit, offset).page(found, lambda r: {
            "id": r.id, "period": r.period, "created_at": r.created_at, **r.data})

    @router.get("/api/v1/reports/sla", response_model=None)
    async def sla_report(month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
                         format: Literal["json", "html", "pdf", "md"] = "json") -> Any:
        """The SLA report of ``month`` (default: last month) in the config's time zone."""
        loaded = runtime.loaded
        if loaded is None:
            raise HTTPException(503, "starting")
        now = time.time()
        chosen = month or previous_month(now, loaded.config.reports.sla.timezone)
        try:
            built = await asyncio.to_thread(build_sla_report, runtime.require_store(),
                                            loaded.config, loaded.checks, chosen, now)
        except ReportError as error:
            raise HTTPException(422, str(error)) from None
        if format == "pdf":
            content = await asyncio.to_thread(render_pdf, built)
            return _document(Response(content, media_type="application/pdf", headers={
                "Content-Disposition": f'inline; filename="sla-{chosen}.pdf"'}))
        if format == "html":
            return _document(HTMLResponse(await asyncio.to_thread(render_html, built)))
        if format == "md":
            return PlainTextResponse(render_markdown(built), media_type="text/markdown")
        return {"has_data": built.has_data, **dataclasses.asdict(built)}

    @router.get("/api/v1/reports/alerts")
    async def alert_review(page: PageParams, since: str = "30d",
                           severity: Severity | None = None) -> dict[str, Any]:
        """Per rule: firings, acks, median time to ack, noise, remediations; noisiest first."""
        try:
            seconds = parse_duration(since)
        except ValueError as error:
            raise HTTPException(422, f"since: {error}") from None
        now = time.time()
        reviews = await asyncio.to_thread(review_alerts, runtime.require_store(), now - seconds,
                                          now)
        chosen = [r for r in reviews if severity is None or r.severity == severity.value]
        return page.page(chosen, lambda r: r.to_json(), since=now - seconds)

    return router


def _document(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DOCUMENT_CSP
    return response
