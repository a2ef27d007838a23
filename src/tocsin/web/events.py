"""Server-Sent Events: check state changes pushed to open dashboards, at ``/api/v1/events``.

The :class:`StateFeed` is a scheduler sink. For each result it compares the
check's state with the last one it saw and, only when it changed, notes the
change; a timer flushes the noted changes every :data:`COALESCE` seconds at
most, as one event, to every client. Each client has a bounded queue: one that
does not keep up is dropped (its browser reconnects and catches up from
``since``), so the scheduler never waits for a socket. A client that goes away
is removed when its response ends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from tocsin.probes import CheckResult
from tocsin.web.auth import require_read
from tocsin.web.views import State, service_name, state_of

if TYPE_CHECKING:
    from tocsin.runtime import Runtime
    from tocsin.scheduler import Scheduler

COALESCE = 0.25  # seconds: changes within it go out as one event
QUEUE_SIZE = 64  # events a client may be behind before it is dropped
KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream
RETRY_MS = 2000  # how soon a browser reconnects after losing the stream


@dataclass(slots=True)
class _Seen:
    state: State
    changed_at: float  # when this process saw the state begin (wall clock)
    result: CheckResult | None


@dataclass(eq=False, slots=True)
class _Client:
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))


def change_json(name: str, service: str, seen: _Seen) -> dict[str, Any]:
    result = seen.result
    return {"check": name, "service": service, "state": seen.state.value,
            "status": result.status.value if result is not None else "",
            "latency_ms": result.latency_ms if result is not None else None,
            "message": result.message if result is not None else "",
            "at": seen.changed_at}


class StateFeed:
    """Turns the scheduler's results into coalesced state-change events for SSE clients."""

    def __init__(self, runtime: Runtime, coalesce: float = COALESCE) -> None:
        self.runtime = runtime
        self.coalesce = coalesce
        self.clients: set[_Client] = set()
        self.dropped = 0  # clients dropped for falling behind
        self._seen: dict[str, _Seen] = {}
        self._pending: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None
        self._scheduler: Scheduler | None = None

    def attach(self) -> None:
        """Become a sink of the runtime's scheduler, once (it starts after the web server)."""
        scheduler = self.runtime.scheduler
        if scheduler is None or scheduler is self._scheduler:
            return
        for spec in self.runtime.checks:  # the states before this are no changes to replay
            latest = self.runtime.latest.get(spec.name)
            self._seen.setdefault(spec.name, _Seen(state_of(latest), 0.0, latest))
        scheduler.add_sink(self.observe)
        self._scheduler = scheduler

    def observe(self, result: CheckResult) -> None:
        """The scheduler sink: O(1), never blocks, never raises."""
        state = state_of(result)
        seen = self._seen.get(result.check)
        if seen is not None and seen.state is state:
            seen.result = result
            return
        self._seen[result.check] = _Seen(state, time.time(), result)
        self._pending.add(result.check)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.coalesce, self._publish)

    def changes_since(self, since: float) -> list[dict[str, Any]]:
        """Every check whose state changed after ``since``: what a (re)connecting page missed."""
        services = {spec.name: service_name(spec) for spec in self.runtime.checks}
        return [change_json(name, services[name], seen) for name, seen in self._seen.items()
                if seen.changed_at > since and name in services]

    def _publish(self) -> None:
        self._flush = None
        names, self._pending = self._pending, set()
        services = {spec.name: service_name(spec) for spec in self.runtime.checks}
        changes = [change_json(name, services[name], self._seen[name])
                   for name in names if name in services]
        if changes:
            self.broadcast(frame("state", {"changes": changes}))

    def broadcast(self, event: str) -> None:
        for client in list(self.clients):
            try:
                client.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.drop(client)

    def drop(self, client: _Client) -> None:
        """Stop feeding ``client``: empty its queue and tell its stream to end."""
        if client in self.clients:
            self.clients.discard(client)
            self.dropped += 1
            while not client.queue.empty():
                client.queue.get_nowait()
            client.queue.put_nowait(None)

    async def stream(self, since: float | None) -> AsyncIterator[str]:
        """One client's events until it disconnects (the response is cancelled) or is dropped."""
        self.attach()
        client = _Client()
        self.clients.add(client)
        try:
            yield f"retry: {RETRY_MS}\n\n"
            missed = self.changes_since(since) if since is not None else []
            yield frame("hello", {"now": time.time(), "changes": missed})
            while True:
                try:
                    event = await asyncio.wait_for(client.queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if event is None:
                    return
                yield event
        finally:
            self.clients.discard(client)

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        for client in list(self.clients):
            self.drop(client)


def frame(event: str, data: dict[str, Any]) -> str:
    """One SSE event; JSON has no raw newline, so it is one ``data:`` line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def events_router(feed: StateFeed) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/events", dependencies=[Depends(require_read)])
    async def events(since: float | None = Query(None, allow_inf_nan=False)) -> StreamingResponse:
        """State changes of checks, as Server-Sent Events (``event: state``)."""
        return StreamingResponse(
            feed.stream(since), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return router

