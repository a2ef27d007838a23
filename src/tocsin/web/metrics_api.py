"""Pushed metrics: ``POST /api/v1/metrics`` (token-protected) and ``GET /api/v1/metrics``.

A push is a batch ``{"metrics": [{"name", "value", "labels", "timestamp"}, …]}``
of at most :data:`MAX_POINTS` points in at most :data:`MAX_BODY` bytes (else
413). It needs ``Authorization: Bearer <web.push_token>``; without a configured
token pushing is off (403). Each point is parsed on its own: a bad one (a value
that is not a number, a timestamp out of range) is reported by index in the
202 answer and the others are kept. A kept point goes to every ``metric`` check
with ``push:`` that it matches (:class:`~tocsin.probes.metric_push.PushSelector`),
in the :class:`~tocsin.probes.metric_push.PushedMetrics` book those checks read.
"""

from __future__ import annotations

import datetime
import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from tocsin.probes.jsonpath import MISSING
from tocsin.probes.metric import MetricCheckConfig, NotANumber, as_number, push_selectors
from tocsin.probes.metric_push import MetricPoint, PushSelector
from tocsin.web.auth import require_read
from tocsin.web.paging import PageParams

if TYPE_CHECKING:
    from tocsin.probes.base import CheckSpec
    from tocsin.runtime import Runtime

MAX_BODY = 1024 * 1024  # bytes of one push
MAX_POINTS = 1000  # points of one push
MAX_NAME = 200  # characters of a metric name, a label name or a label value
MAX_LABELS = 32
FUTURE_LIMIT = 3600.0  # seconds: a point stamped further ahead is refused (a wrong clock)
PAST_LIMIT = 86400.0  # seconds: a point older than this is refused (a stale replay)
_POINT_KEYS = frozenset({"name", "value", "labels", "timestamp"})


def parse_point(raw: Any, now: float) -> MetricPoint:
    """One pushed point, checked; ValueError saying what is wrong with it."""
    if not isinstance(raw, Mapping):
        raise ValueError("a point is an object with name and value")
    unknown = sorted(set(raw) - _POINT_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (a point has name, value, labels, "
                         "timestamp)")
    name = raw.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise ValueError(f"name must be a text of 1 to {MAX_NAME} characters")
    try:
        value = as_number(raw.get("value", MISSING), "value")
    except NotANumber as exc:
        raise ValueError(str(exc)) from None
    return MetricPoint(name, value, _labels(raw.get("labels")), _timestamp(raw.get("timestamp"),
                                                                           now))


def _labels(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or len(raw) > MAX_LABELS or not all(
            isinstance(key, str) and isinstance(value, str)
            and 0 < len(key) <= MAX_NAME and len(value) <= MAX_NAME
            for key, value in raw.items()):
        raise ValueError(f"labels must be an object of at most {MAX_LABELS} text values "
                         f"(names and values of up to {MAX_NAME} characters)")
    return dict(raw)


def _timestamp(raw: Any, now: float) -> float:
    """Epoch seconds, or RFC 3339 text with a time zone; within the accepted window."""
    if raw is None:
        return now
    if isinstance(raw, str):
        try:
            moment = datetime.datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError("timestamp must be epoch seconds or RFC 3339, "
                             "e.g. 2026-11-27T16:00:00Z") from None
        if moment.tzinfo is None:
            raise ValueError("an RFC 3339 timestamp needs a time zone, e.g. Z or +01:00")
        stamp = moment.timestamp()
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        stamp = float(raw)
    else:
        raise ValueError("timestamp must be epoch seconds or RFC 3339 text")
    if not stamp <= now + FUTURE_LIMIT:  # also refuses NaN
        raise ValueError("timestamp is more than 1h in the future")
    if stamp < now - PAST_LIMIT:
        raise ValueError("timestamp is more than 1 day in the past")
    return stamp


def _require_push_token(runtime: Runtime, request: Request) -> None:
    token = runtime.loaded.config.web.push_token if runtime.loaded is not None else None
    if token is None:
        raise HTTPException(403, "pushing metrics is off: set web.push_token")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or \
            not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(401, "a valid push token is required (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 past :data:`MAX_BODY` (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, f"a push is at most {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"a push is at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _by_metric(selectors: list[PushSelector]) -> dict[str, list[PushSelector]]:
    index: dict[str, list[PushSelector]] = {}
    for selector in selectors:
        index.setdefault(selector.metric, []).append(selector)
    return index


def metrics_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.post("/api/v1/metrics", status_code=202)
    async def push_metrics(request: Request) -> JSONResponse:
        """Record a batch of points for the ``metric`` checks with ``push:``."""
        _require_push_token(runtime, request)
        try:
            document = json.loads(await _read_body(request))
        except ValueError:
            raise HTTPException(400, "the body is not JSON") from None
        raw_points = document.get("metrics") if isinstance(document, dict) else None
        if not isinstance(raw_points, list):
            raise HTTPException(400, 'the body is {"metrics": [{"name": …, "value": …}, …]}')
        if len(raw_points) > MAX_POINTS:
            raise HTTPException(413, f"a push is at most {MAX_POINTS} points, not "
                                     f"{len(raw_points)}: send them in batches")
        now = time.time()
        selectors = _by_metric(push_selectors(runtime.checks))
        book = runtime.context.metrics
        accepted, errors, unmatched, fed = 0, [], [], set()
        for index, raw in enumerate(raw_points):
            try:
                point = parse_point(raw, now)
            except ValueError as exc:
                errors.append({"index": index, "error": str(exc)})
                continue
            accepted += 1
            checks = [s.check for s in selectors.get(point.name, ()) if s.matches(point)]
            for check in checks:
                book.record(check, point, now)
            fed.update(checks)
            if not checks:
                unmatched.append(index)
        return JSONResponse(status_code=202, content={
            "accepted": accepted, "matched": accepted - len(unmatched),
            "unmatched": unmatched, "checks": sorted(fed), "errors": errors,
        })

    @router.get("/api/v1/metrics", dependencies=[Depends(require_read)])
    def list_metrics(page: PageParams, service: str | None = None) -> dict[str, Any]:
        """Every ``metric`` check with its latest value (and, if pushed, its newest point)."""
        specs = [spec for spec in runtime.checks if isinstance(spec.config, MetricCheckConfig)
                 and (service is None or spec.service == service)]
        return page.page(specs, lambda spec: _metric_json(runtime, spec))

    return router


def _metric_json(runtime: Runtime, spec: CheckSpec[MetricCheckConfig]) -> dict[str, Any]:
    config = spec.config
    latest = runtime.latest.get(spec.name)
    item: dict[str, Any] = {
        "check": spec.name, "service": spec.service, "source": config.source,
        "value": latest.values.get("value") if latest is not None else None,
        "status": latest.status.value if latest is not None else None,
        "at": latest.started_at if latest is not None else None,
        "message": latest.message if latest is not None else "",
    }
    if config.push:
        item["metric"] = config.metric or spec.name
        item["match"] = dict(config.match)
        pushed = runtime.context.metrics.latest(spec.name)
        item["point"] = None if pushed is None else {
            "value": pushed.point.value, "timestamp": pushed.point.timestamp,
            "labels": dict(pushed.point.labels), "received_at": pushed.received_at}
    return item
