"""The JSON behind the dashboard: overview, services, a check's history and its rollups.

``/api/v1/overview`` answers from memory (latest results) and one cached
24-hour summary of every check: no query per check, whatever their number.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from tocsin.store.rollups import Rollup
from tocsin.web.api import result_json
from tocsin.web.auth import require_read
from tocsin.web.paging import PageParams
from tocsin.web.views import (
    PAGE_SIZE,
    CheckRow,
    ServiceRow,
    State,
    SummaryCache,
    overview_rows,
    paginate,
    service_rows,
)

if TYPE_CHECKING:
    from tocsin.runtime import Runtime

Range = Literal["hour", "day", "week", "month"]
#: Each chart range: its length and the rollup step that draws it.
RANGES: dict[str, tuple[float, int]] = {
    "hour": (3600.0, 300), "day": (86400.0, 300),
    "week": (7 * 86400.0, 3600), "month": (30 * 86400.0, 3600),
}
HISTORY_LIMIT = 1000


def row_json(row: CheckRow) -> dict[str, Any]:
    return {"name": row.name, "service": row.service, "type": row.type,
            "state": row.state.value, "status": row.status or None,
            "latency_ms": row.latency_ms, "last_at": row.last_at, "message": row.message,
            "uptime_24h": row.uptime}


def service_json(row: ServiceRow) -> dict[str, Any]:
    return {"name": row.name, "state": row.state.value, "checks": row.total,
            "up": row.up, "down": row.down, "unknown": row.unknown}


def rollup_json(rollup: Rollup) -> dict[str, Any]:
    summary = rollup.summary
    return {"start": rollup.start, "step": rollup.step, "count": summary.count,
            "failures": summary.failures, "errors": summary.errors, "uptime": summary.uptime,
            "mean_ms": summary.mean, "p50_ms": summary.p50, "p95_ms": summary.p95,
            "p99_ms": summary.p99, "max_ms": summary.max}


def history_router(runtime: Runtime, uptimes: SummaryCache) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_read)])

    def known(name: str) -> None:
        if not any(spec.name == name for spec in runtime.checks):
            raise HTTPException(404, f"no check {name!r}")

    @router.get("/api/v1/overview")
    async def overview(service: str | None = None, state: State | None = None,
                       q: str = Query("", max_length=200), page: int = Query(1, ge=1),
                       size: int = Query(PAGE_SIZE, ge=1, le=1000)) -> dict[str, Any]:
        """Services, and one page of checks (down first) with state, latency and 24-hour uptime."""
        rows = overview_rows(runtime, await uptimes.get(), service=service, state=state,
                             search=q)
        shown = paginate(rows, page, size)
        return {"services": [service_json(s) for s in service_rows(runtime)],
                "total": shown.total, "page": shown.number, "pages": shown.pages,
                "size": shown.size, "items": [row_json(r) for r in shown.rows]}

    @router.get("/api/v1/services")
    async def services(page: PageParams, state: State | None = None) -> dict[str, Any]:
        """Every service with the state of its checks, worst first."""
        rows = sorted((s for s in service_rows(runtime) if state is None or s.state is state),
                      key=lambda s: (-s.state.rank, s.name))
        return page.page(rows, service_json)

    @router.get("/api/v1/checks/{name:path}/history")
    async def history(name: str, since: float | None = Query(None, allow_inf_nan=False),
                      until: float | None = Query(None, allow_inf_nan=False),
                      limit: int = Query(100, ge=1, le=HISTORY_LIMIT)) -> dict[str, Any]:
        """A check's results with ``since <= started_at < until``, newest first.

        Paged by a cursor, not an offset (a history has no cheap total): while a
        page is full, ``next_until`` is its oldest ``started_at``; pass it as
        ``until`` for the page before. A check's runs never share a start time.
        """
        known(name)
        store = runtime.require_store()
        results = await asyncio.to_thread(store.history, name, since, until, limit)
        next_until = results[-1].started_at if len(results) == limit else None
        return {"check": name, "limit": limit, "since": since, "until": until,
                "next_until": next_until, "items": [result_json(r) for r in results]}

    @router.get("/api/v1/checks/{name:path}/rollups")
    async def rollups(name: str, range_: Annotated[Range, Query(alias="range")] = "day"
                      ) -> dict[str, Any]:
        """A check's latency and uptime in buckets: 5-minute for an hour or a day,
        hourly for a week or a month."""
        known(name)
        length, step = RANGES[range_]
        now = time.time()
        store = runtime.require_store()
        series = await asyncio.to_thread(store.rollups, name, now - length, now, step)
        return {"check": name, "range": range_, "step": step, "since": now - length,
                "until": now, "items": [rollup_json(r) for r in series]}

    return router
