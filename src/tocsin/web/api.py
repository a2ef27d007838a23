"""The JSON API, versioned under /api/v1, and Tocsin's own /health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse

from tocsin import __version__
from tocsin.probes import CheckResult, CheckSpec, CheckStatus
from tocsin.web.alerts_api import alerts_router
from tocsin.web.auth import install_auth, require_read
from tocsin.web.channels_api import channels_router
from tocsin.web.login import login_router
from tocsin.web.metrics_api import metrics_router
from tocsin.web.pings import pings_router
from tocsin.web.prometheus import prometheus_router
from tocsin.web.reports_api import reports_router
from tocsin.web.security import SecurityHeaders, install_error_handlers

if TYPE_CHECKING:
    from tocsin.runtime import Runtime


def result_json(result: CheckResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "started_at": result.started_at,
        "latency_ms": result.latency_ms,
        "code": result.code,
        "message": result.message,
        "values": dict(result.values),
        "timings": dict(result.timings),
    }


def check_json(spec: CheckSpec[Any], latest: CheckResult | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "service": spec.service,
        "type": spec.type,
        "interval_s": spec.interval,
        "timeout_s": spec.timeout,
        "latest": result_json(latest) if latest is not None else None,
    }


def create_app(runtime: Runtime) -> FastAPI:
    """The FastAPI app over a running :class:`Runtime`."""
    app = FastAPI(title="Tocsin", version=__version__, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    install_auth(app, lambda: runtime.store)
    app.include_router(login_router())

    @app.get("/health")
    def health() -> JSONResponse:
        """Tocsin's own health: 200 when it schedules checks and its store accepts writes."""
        writer, scheduler = runtime.writer, runtime.scheduler
        store_error = writer.last_error if writer is not None else None
        body: dict[str, Any] = {
            "status": "ok" if store_error is None else "degraded",
            "version": __version__,
            "uptime_s": round(time.monotonic() - runtime.started_monotonic, 3),
            "checks": len(runtime.checks),
        }
        if scheduler is not None:
            lag = scheduler.stats.lag()
            body["scheduler"] = {"runs": scheduler.stats.runs, "lag_p99_ms": lag.p99 * 1000,
                                 "lag_max_ms": lag.max * 1000}
        if writer is not None:
            body["store"] = {"written": writer.written, "pending": writer.pending,
                             "buffer": writer.max_pending, "dropped": writer.dropped,
                             "available": writer.available,
                             "unavailable_since": writer.unavailable_since,
                             "error": store_error}
        return JSONResponse(body, status_code=200 if store_error is None else 503)

    @app.get("/api/v1/checks", dependencies=[Depends(require_read)])
    def list_checks(
        service: str | None = None,
        status: CheckStatus | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        """Every configured check with its latest result, filtered and paged."""
        rows = []
        for spec in runtime.checks:
            if service is not None and spec.service != service:
                continue
            latest = runtime.latest.get(spec.name)
            if status is not None and (latest is None or latest.status is not status):
                continue
            rows.append(check_json(spec, latest))
        return {"total": len(rows), "limit": limit, "offset": offset,
                "items": rows[offset:offset + limit]}

    @app.get("/api/v1/checks/{name}", dependencies=[Depends(require_read)])
    def one_check(name: str) -> dict[str, Any]:
        """One check with its latest result."""
        spec = next((spec for spec in runtime.checks if spec.name == name), None)
        if spec is None:
            raise HTTPException(404, f"no check named {name!r}")
        return check_json(spec, runtime.latest.get(name))

    app.include_router(alerts_router(runtime))
    app.include_router(channels_router(runtime))
    app.include_router(metrics_router(runtime))
    app.include_router(pings_router(runtime))
    app.include_router(prometheus_router(runtime))
    app.include_router(reports_router(runtime))
    # Imported here: the pages' JSON reuses result_json above (no import cycle).
    from tocsin.web.dashboard import include_pages

    include_pages(app, runtime)
    return app
