"""SVG badges, shields-style and flat: ``/badge/<check or service>/<kind>.svg``.

Kinds: ``status``, ``uptime-24h``, ``uptime-7d``, ``uptime-30d`` and
``response-time``. A badge exists for what the status page shows (its services
and their checks) and is as public as the page. Uptime comes from one cached
summary per window over every shown check, so a README full of badges costs
a few queries a minute.
"""

from __future__ import annotations

import time
from html import escape
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from tocsin.web.status import shown_services
from tocsin.web.views import (
    State,
    SummaryCache,
    checks_of,
    fmt_latency,
    fmt_uptime,
    service_name,
    service_state,
    state_of,
)

if TYPE_CHECKING:
    from tocsin.runtime import Runtime

BADGE_MAX_AGE = 60  # seconds a badge may be cached by a browser or a CDN
UPTIME_WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
COLOURS = {"green": "#4c1", "yellow": "#dfb317", "orange": "#fe7d37", "red": "#e05d44",
           "grey": "#9f9f9f", "blue": "#007ec6"}
_STATE_COLOURS = {State.UP: "green", State.DEGRADED: "orange", State.DOWN: "red",
                  State.UNKNOWN: "grey"}
# Verdana 11px advance widths (in tenths of a pixel) of the common characters; others: 70.
_WIDE = {**dict.fromkeys("abcdeghknopqsuvxyz", 65), **dict.fromkeys("fjrt", 40),
         **dict.fromkeys("il", 30), "m": 100, "w": 90, " ": 35, ".": 35, "%": 110,
         "-": 45, ":": 40, **dict.fromkeys("0123456789", 70)}


def text_width(text: str) -> int:
    """The text's width in pixels, estimated as shields.io does for Verdana 11px."""
    return round(sum(_WIDE.get(char, 70 if not char.isupper() else 75) for char in text) / 10)


def render_badge(label: str, message: str, colour: str) -> str:
    """A flat two-part badge; both texts are escaped."""
    left, right = text_width(label) + 10, text_width(message) + 10
    width = left + right
    label_x, message_x = left * 5, (left + right / 2) * 10
    fill = COLOURS.get(colour, COLOURS["grey"])
    safe_label, safe_message = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{safe_label}: {safe_message}"><title>{safe_label}: {safe_message}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        f'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{fill}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,'
        f'sans-serif" font-size="110" text-rendering="geometricPrecision">'
        f'<text x="{label_x:.0f}" y="140" transform="scale(.1)" fill="#fff">{safe_label}</text>'
        f'<text x="{message_x:.0f}" y="140" transform="scale(.1)" fill="#fff">{safe_message}'
        f'</text></g></svg>')


def uptime_colour(uptime: float | None) -> str:
    if uptime is None:
        return "grey"
    if uptime >= 0.999:
        return "green"
    if uptime >= 0.99:
        return "yellow"
    return "orange" if uptime >= 0.95 else "red"


def latency_colour(ms: float | None) -> str:
    if ms is None:
        return "grey"
    if ms < 300:
        return "green"
    if ms < 1000:
        return "yellow"
    return "orange" if ms < 3000 else "red"


def badges_router(runtime: Runtime, access: Any) -> APIRouter:
    """``access`` is the status page's dependency: badges are as public as it is."""
    router = APIRouter(dependencies=[Depends(access)])
    caches = {window: SummaryCache(runtime, window=seconds, ttl=BADGE_MAX_AGE)
              for window, seconds in UPTIME_WINDOWS.items()}

    def subject(name: str) -> list[Any]:
        shown = set(shown_services(runtime))
        specs = [spec for spec in checks_of(runtime, name) if service_name(spec) in shown]
        if not specs:
            raise HTTPException(404, f"no check or service {name!r} on the status page")
        return specs

    def svg(label: str, message: str, colour: str) -> Response:
        return Response(render_badge(label, message, colour), media_type="image/svg+xml",
                        headers={"Cache-Control": f"public, max-age={BADGE_MAX_AGE}",
                                 "Content-Security-Policy": "default-src 'none'"})

    @router.get("/badge/{name:path}/status.svg")
    async def status_badge(name: str) -> Response:
        state = service_state(state_of(runtime.latest.get(spec.name)) for spec in subject(name))
        return svg(name, state.value, _STATE_COLOURS[state])

    @router.get("/badge/{name:path}/uptime-{window}.svg")
    async def uptime_badge(name: str, window: str) -> Response:
        if window not in caches:
            raise HTTPException(404, "uptime badges are for 24h, 7d or 30d")
        specs = subject(name)
        summaries = await caches[window].get()
        ok = count = 0
        for spec in specs:
            summary = summaries.get(spec.name)
            if summary is not None:
                ok, count = ok + summary.ok, count + summary.count
        uptime = ok / count if count else None
        return svg(f"uptime {window}", fmt_uptime(uptime), uptime_colour(uptime))

    @router.get("/badge/{name:path}/response-time.svg")
    async def response_time_badge(name: str) -> Response:
        """The latest response time: of the check, or the slowest of the service's checks."""
        horizon = time.time() - 86400
        latencies = [latest.latency_ms for spec in subject(name)
                     if (latest := runtime.latest.get(spec.name)) is not None
                     and latest.latency_ms is not None and latest.started_at >= horizon]
        slowest = max(latencies) if latencies else None
        return svg("response time", fmt_latency(slowest), latency_colour(slowest))

    return router
