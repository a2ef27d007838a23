"""Heartbeat pings: ``/ping/<token>[/start|/fail|/log|/<exit-code>]``, and the heartbeats API.

A job calls its heartbeat's secret URL with GET, POST or HEAD. The answer is
``200 OK`` once the ping is recorded in memory (the probe reads it there) and,
within :data:`STORE_WAIT`, in the store; a store that is down costs the ping's
history row and a logged error, never the ping itself. Then the heartbeat's
check runs at once, so a ``/fail`` alerts and a late success resolves without
waiting for the next interval.

An unknown token gets the same ``404 Not Found`` as any unknown path, and the
misses of one client are rate limited (guessing tokens is slow). A known token
is rate limited by its check's ``rate_limit`` (429 with ``Retry-After``). The
body, read up to the check's ``body_limit``, is kept (and marked truncated
beyond it). Tokens never appear in logs: the access log is off, and errors name
the check, not the URL.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from tocsin.probes.heartbeat_book import HeartbeatCheckConfig, Ping, PingKind, TokenBucket
from tocsin.store.base import StoreError
from tocsin.web.auth import require_read, require_write
from tocsin.web.paging import PageParams

if TYPE_CHECKING:
    from tocsin.probes.base import CheckSpec
    from tocsin.runtime import Runtime

log = logging.getLogger("tocsin.web.pings")

STORE_WAIT = 2.0  # seconds a ping waits for its row in the store before answering anyway
MISSES_PER_MINUTE = 30  # unknown-token requests one client may make
MISS_CLIENTS_KEPT = 10_000
_RID = re.compile(r"[A-Za-z0-9_\-.]{1,128}")
_SIGNALS = {"start": PingKind.START, "fail": PingKind.FAIL, "log": PingKind.LOG}
_METHODS = ["GET", "POST", "HEAD"]
#: What a heartbeat's pings mean now (``Assessment.state``), as ``?state=`` takes it.
HeartbeatStateName = Literal["new", "up", "running", "late", "down", "failed"]


def ping_json(ping: Ping) -> dict[str, Any]:
    return {"kind": ping.kind.value, "at": ping.at, "rid": ping.rid,
            "exit_code": ping.exit_code, "duration_s": ping.duration_s, "body": ping.body,
            "truncated": ping.truncated, "method": ping.method, "source": ping.source}


class _MissLimiter:
    """Per-client budget of unknown-token requests, forgetting the oldest clients."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, client: str, now: float) -> bool:
        bucket = self._buckets.pop(client, None) or TokenBucket(MISSES_PER_MINUTE, now)
        self._buckets[client] = bucket  # most recent last
        while len(self._buckets) > MISS_CLIENTS_KEPT:
            del self._buckets[next(iter(self._buckets))]
        return bucket.take(now)


async def read_capped(request: Request, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the request body, and whether there was more."""
    kept = bytearray()
    async for chunk in request.stream():
        room = limit - len(kept)
        if len(chunk) > room:
            kept += chunk[:room]
            return bytes(kept), True
        kept += chunk
    return bytes(kept), False


def pings_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    misses = _MissLimiter()

    def client_of(request: Request) -> str:
        return request.client.host if request.client is not None else ""

    def not_found(request: Request) -> HTTPException:
        if not misses.allow(client_of(request), time.monotonic()):
            return HTTPException(429, "Too Many Requests", headers={"Retry-After": "60"})
        return HTTPException(404, "Not Found")

    async def receive(request: Request, token: str, signal: str | None,
                      rid: str | None) -> Response:
        book = runtime.context.heartbeats
        spec = book.find(token)
        if spec is None:
            raise not_found(request)
        now = time.time()
        wait = book.allow(spec.name, time.monotonic())
        if wait is not None:
            raise HTTPException(429, "Too Many Requests",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        kind, exit_code = _signal(signal)
        if rid is not None and not _RID.fullmatch(rid):
            raise HTTPException(400, "rid must be 1-128 letters, digits, '-', '_' or '.'")
        raw, truncated = await read_capped(request, spec.config.body_limit)
        ping = book.record(Ping(
            check=spec.name, kind=kind, at=now, rid=rid, exit_code=exit_code,
            body=raw.decode("utf-8", errors="replace"), truncated=truncated,
            method=request.method, source=client_of(request),
        ))
        await _store(runtime, spec, ping)
        if kind is not PingKind.LOG and runtime.scheduler is not None:
            runtime.scheduler.run_soon(spec.name, 0.0)
        return PlainTextResponse("OK" if request.method != "HEAD" else "")

    @router.api_route("/ping/{token}", methods=_METHODS, include_in_schema=False)
    async def ping(request: Request, token: str,
                   rid: str | None = Query(None)) -> Response:
        return await receive(request, token, None, rid)

    @router.api_route("/ping/{token}/{signal}", methods=_METHODS, include_in_schema=False)
    async def ping_signal(request: Request, token: str, signal: str,
                          rid: str | None = Query(None)) -> Response:
        return await receive(request, token, signal, rid)

    @router.get("/api/v1/heartbeats", dependencies=[Depends(require_read)])
    def list_heartbeats(page: PageParams, service: str | None = None,
                        state: HeartbeatStateName | None = None) -> dict[str, Any]:
        """Every heartbeat check: its schedule and what its pings mean now (tokens never shown)."""
        book, now = runtime.context.heartbeats, time.time()
        items = []
        for name in book.names():
            spec, assessment = book.spec(name), book.assess(name, now)
            if spec is None or assessment is None:
                continue
            if (service is not None and spec.service != service) or \
                    (state is not None and assessment.state != state):
                continue
            items.append({"name": name, "service": spec.service,
                          "schedule": spec.config.schedule_text(),
                          "state": assessment.state, "status": assessment.status.value,
                          "message": assessment.message, "values": assessment.values,
                          "details": assessment.details})
        return page.answer(len(items), page.cut(items))

    @router.get("/api/v1/heartbeats/{check}/pings", dependencies=[Depends(require_write)])
    async def list_pings(check: str, since: float | None = None,
                         limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Recent pings of one heartbeat with their bodies, newest first.

        Bodies are job output, so this needs the same authorisation as writes.
        """
        if runtime.context.heartbeats.spec(check) is None:
            raise HTTPException(404, f"no heartbeat check named {check!r}")
        pings = await asyncio.to_thread(runtime.require_store().list_pings, check, since, limit)
        return {"check": check, "items": [ping_json(p) for p in pings]}

    return router


def _signal(signal: str | None) -> tuple[PingKind, int | None]:
    if signal is None:
        return PingKind.SUCCESS, None
    kind = _SIGNALS.get(signal)
    if kind is not None:
        return kind, None
    if signal.isdigit() and int(signal) <= 255:
        code = int(signal)
        return (PingKind.SUCCESS if code == 0 else PingKind.FAIL), code
    raise HTTPException(400, "unknown signal: use /start, /fail, /log or an exit code 0-255")


async def _store(runtime: Runtime, spec: CheckSpec[HeartbeatCheckConfig], ping: Ping) -> None:
    store = runtime.store
    if store is None:
        return
    try:
        await asyncio.wait_for(asyncio.to_thread(store.record_pings, [ping]), STORE_WAIT)
    except (StoreError, TimeoutError) as error:
        # The state in memory has the ping; only its history row may be missing.
        log.error("heartbeat %s: could not store a ping: %s", spec.name,
                  error or "the store did not answer in time")
