"""The registry of an app's health checks, and the report one run of them makes.

Each check is an async callable with a timeout. It is *healthy* when it
returns ``None``, ``True`` or a string (a note shown as its ``message``), and
*unhealthy* when it returns ``False``, raises :class:`Unhealthy` (its message
as given) or raises anything else (``<ExceptionType>: message``, never a
traceback), or outlives its timeout. Messages are cut to one short line and
credentials that look like ``user:password@`` or ``password=…`` are masked, as
the report is served to whoever asks.

A run starts every check at once; each is bounded by its own timeout, so the
whole answer takes at most the longest timeout, even when a check ignores
cancellation. A report is reused for ``cache_ttl`` seconds, and callers that
arrive while a run is under way wait for that run instead of starting another:
a burst of probes costs the database one ``SELECT 1``.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from fastapi import APIRouter
    from starlette.routing import Route

    from tocsin.health.adapters import ASGIApp

CheckFunction = Callable[[], Awaitable[bool | str | None]]
"""A health check: ``None``/``True``/a note when healthy, ``False`` or a raise when not."""

F = TypeVar("F", bound=CheckFunction)

MESSAGE_LIMIT = 200

_CREDENTIALS_IN_URL = re.compile(r"(\w[\w+.-]*://[^\s/:@]*):[^\s/@]*@")
_SECRET_ASSIGNMENT = re.compile(
    r"\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)",
    re.IGNORECASE,
)


class Unhealthy(Exception):
    """Raise from a check to report it unhealthy with exactly this message."""


class HealthStatus(enum.StrEnum):
    """The status of the whole app, or (healthy/unhealthy only) of one check."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"  # only non-critical checks fail: still serving (HTTP 200)
    UNHEALTHY = "unhealthy"  # a critical check fails (HTTP 503)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What one check found in one run."""

    name: str
    status: HealthStatus
    latency_ms: float
    critical: bool
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"status": self.status.value}
        if self.message:
            entry["message"] = self.message
        entry["latency_ms"] = round(self.latency_ms, 1)
        entry["critical"] = self.critical
        return entry


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One run of every check: the answer of the app's ``/health`` endpoint."""

    status: HealthStatus
    checks: Mapping[str, CheckReport]
    version: str | None
    timestamp: str  # RFC 3339, UTC, when the run started

    @property
    def http_status(self) -> int:
        """503 when a critical check fails, else 200 (degraded still serves)."""
        return 503 if self.status is HealthStatus.UNHEALTHY else 200

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "status": self.status.value,
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }
        if self.version is not None:
            document["version"] = self.version
        document["timestamp"] = self.timestamp
        return document

    def as_json(self) -> bytes:
        return json.dumps(self.as_dict(), separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class _Check:
    name: str
    function: CheckFunction
    timeout: float
    critical: bool


class HealthRegistry:
    """The named health checks of one app, run together on demand.

    ::

        health = HealthRegistry(version="1.4.2")
        health.add("database", database(engine), timeout=2)

        @health.check("cache", critical=False)
        async def cache() -> None:
            await redis.ping()

        report = await health.run()     # or serve it: health.router(), .asgi_app()

    ``clock`` (monotonic seconds) is injectable so tests can age the cache.
    """

    def __init__(
        self,
        version: str | None = None,
        *,
        cache_ttl: float = 2.0,
        default_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_ttl < 0:
            raise ValueError("cache_ttl must be 0 (no cache) or more seconds")
        _positive_timeout(default_timeout)
        self.version = version
        self.cache_ttl = cache_ttl
        self.default_timeout = default_timeout
        self._clock = clock
        self._checks: dict[str, _Check] = {}
        self._cached: tuple[float, HealthReport] | None = None
        self._running: asyncio.Task[HealthReport] | None = None
        # Checks that outlived their timeout and were cancelled; kept referenced
        # until they end so that one ignoring cancellation is not garbage-collected.
        self._abandoned: set[asyncio.Task[bool | str | None]] = set()

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    def add(
        self,
        name: str,
        function: CheckFunction,
        *,
        timeout: float | None = None,
        critical: bool = True,
    ) -> None:
        """Register ``function`` as check ``name``; a failing critical check makes the app
        unhealthy (503), a failing non-critical one only degraded (200)."""
        if not name:
            raise ValueError("a health check needs a name")
        if name in self._checks:
            raise ValueError(f"health check {name!r} is already registered")
        if not callable(function):
            raise TypeError(f"health check {name!r} must be an async callable")
        timeout = self.default_timeout if timeout is None else _positive_timeout(timeout)
        self._checks[name] = _Check(name, function, float(timeout), critical)
        self._cached = None

    def check(
        self, name: str | None = None, *, timeout: float | None = None, critical: bool = True
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`add`; the name defaults to the function's."""

        def register(function: F) -> F:
            self.add(name or str(getattr(function, "__name__", "")), function,
                     timeout=timeout, critical=critical)
            return function

        return register

    async def run(self) -> HealthReport:
        """The current report: a fresh run, the one under way, or one younger than the TTL."""
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < self.cache_ttl:
            return cached[1]
        loop = asyncio.get_running_loop()
        running = self._running
        if running is None or running.done() or running.get_loop() is not loop:
            running = loop.create_task(self._run_checks(), name="tocsin-health-run")
            self._running = running
        # Shielded: a caller that goes away (client disconnect) must not cancel
        # the run the other callers are waiting for.
        return await asyncio.shield(running)

    async def _run_checks(self) -> HealthReport:
        timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        checks = list(self._checks.values())
        reports = await asyncio.gather(*(self._run_one(check) for check in checks))
        report = HealthReport(
            status=_overall(reports),
            checks={report.name: report for report in reports},
            version=self.version,
            timestamp=timestamp,
        )
        self._cached = (self._clock(), report)
        return report

    async def _run_one(self, check: _Check) -> CheckReport:
        start = time.perf_counter()
        task = asyncio.ensure_future(_call(check.function))
        try:
            done, _ = await asyncio.wait({task}, timeout=check.timeout)
        finally:
            if not task.done():
                task.cancel()
                self._abandon(task)
        latency_ms = (time.perf_counter() - start) * 1000

        def unhealthy(message: str) -> CheckReport:
            return CheckReport(check.name, HealthStatus.UNHEALTHY, latency_ms, check.critical,
                               message)

        if not done:
            return unhealthy(f"timed out after {_seconds(check.timeout)}")
        if task.cancelled():
            return unhealthy("cancelled")
        error = task.exception()
        if isinstance(error, Unhealthy):
            return unhealthy(short_message(str(error)) or "unhealthy")
        if error is not None:
            return unhealthy(describe_exception(error))
        outcome = task.result()
        if outcome is False:
            return unhealthy("check returned False")
        note = short_message(outcome) if isinstance(outcome, str) else None
        return CheckReport(check.name, HealthStatus.HEALTHY, latency_ms, check.critical,
                           note or None)

    def _abandon(self, task: asyncio.Task[bool | str | None]) -> None:
        self._abandoned.add(task)

        def forget(done: asyncio.Task[bool | str | None]) -> None:
            self._abandoned.discard(done)
            if not done.cancelled():
                done.exception()  # retrieved: its failure was already reported as a timeout

        task.add_done_callback(forget)

    # -- serving: each adapter imports its framework only when asked for ------------------------

    def router(self, path: str = "/health", **route_options: Any) -> APIRouter:
        """A FastAPI ``APIRouter`` answering GET/HEAD ``path``: ``app.include_router(...)``."""
        from tocsin.health.adapters import fastapi_router

        return fastapi_router(self, path, **route_options)

    def starlette_route(self, path: str = "/health") -> Route:
        """A Starlette ``Route`` answering GET/HEAD ``path``."""
        from tocsin.health.adapters import starlette_route

        return starlette_route(self, path)

    def asgi_app(self, path: str | None = None) -> ASGIApp:
        """A plain ASGI app (no framework) answering ``path``, or every path when None."""
        from tocsin.health.adapters import asgi_app

        return asgi_app(self, path)


async def _call(function: CheckFunction) -> bool | str | None:
    # A check that raises before its first await still counts as that check's failure.
    return await function()


def _overall(reports: list[CheckReport]) -> HealthStatus:
    failing = [report for report in reports if report.status is not HealthStatus.HEALTHY]
    if any(report.critical for report in failing):
        return HealthStatus.UNHEALTHY
    return HealthStatus.DEGRADED if failing else HealthStatus.HEALTHY


def _positive_timeout(timeout: float) -> float:
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return timeout


def _seconds(value: float) -> str:
    return f"{value:g} s"


def short_message(text: str) -> str:
    """``text`` on one line, credentials masked, at most :data:`MESSAGE_LIMIT` characters."""
    line = " ".join(text.split())
    line = _CREDENTIALS_IN_URL.sub(r"\1:***@", line)
    line = _SECRET_ASSIGNMENT.sub(r"\1\2***", line)
    if len(line) > MESSAGE_LIMIT:
        line = line[: MESSAGE_LIMIT - 1] + "…"
    return line


def describe_exception(error: BaseException) -> str:
    """``<ExceptionType>: message`` on one short line; the type alone when it says nothing."""
    name = type(error).__name__
    text = str(error)
    return short_message(f"{name}: {text}") if text.strip() else name
