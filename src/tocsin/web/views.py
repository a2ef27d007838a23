"""View models shared by the dashboard, the status page and the badges.

Everything here reads what the runtime already holds — the latest result of
every check in memory, the config — plus one cached :meth:`Store.summary` over
all checks, so that a page over 5,000 checks costs no query per check.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.templating import Jinja2Templates

from tocsin.probes import CheckResult, CheckSpec, CheckStatus
from tocsin.store.base import StoreError
from tocsin.store.rollups import Summary

if TYPE_CHECKING:
    from tocsin.runtime import Runtime

log = logging.getLogger("tocsin.web")

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

UPTIME_TTL = 45.0  # seconds a 24-hour uptime summary of every check is reused
PAGE_SIZE = 200  # checks per page of the overview


class State(enum.Enum):
    """What a check or service looks like on a page: its latest result, reduced."""

    UP = "up"
    DEGRADED = "degraded"  # a service with some checks down
    DOWN = "down"
    UNKNOWN = "unknown"  # no result yet

    @property
    def rank(self) -> int:
        return {"up": 0, "unknown": 1, "degraded": 2, "down": 3}[self.value]


def state_of(result: CheckResult | None) -> State:
    if result is None:
        return State.UNKNOWN
    return State.UP if result.status is CheckStatus.OK else State.DOWN


def service_state(states: Iterable[State]) -> State:
    """Down when every check with a result is down, degraded when some are, else up."""
    seen = [state for state in states if state is not State.UNKNOWN]
    if not seen:
        return State.UNKNOWN
    down = sum(state is State.DOWN for state in seen)
    if down == 0:
        return State.UP
    return State.DOWN if down == len(seen) else State.DEGRADED


def service_name(spec: CheckSpec[Any]) -> str:
    """The service a check belongs to; host and stand-alone checks group under ``(host)``."""
    return spec.service or "(host)"


# -- the overview ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One line of the overview."""

    name: str
    service: str
    type: str
    state: State
    status: str  # ok / failing / error / "" (no result)
    latency_ms: float | None
    last_at: float | None
    message: str
    uptime: float | None  # 0..1 over the last 24 hours


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """A service and the counts of its checks by state."""

    name: str
    state: State
    up: int
    down: int
    unknown: int

    @property
    def total(self) -> int:
        return self.up + self.down + self.unknown


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a filtered list; ``number`` may lie past the end (then ``rows`` is empty)."""

    rows: list[CheckRow]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def past_end(self) -> bool:
        return self.number > self.pages


def check_row(spec: CheckSpec[Any], latest: CheckResult | None,
              summary: Summary | None) -> CheckRow:
    return CheckRow(
        name=spec.name, service=service_name(spec), type=spec.type, state=state_of(latest),
        status=latest.status.value if latest is not None else "",
        latency_ms=latest.latency_ms if latest is not None else None,
        last_at=latest.started_at if latest is not None else None,
        message=latest.message if latest is not None else "",
        uptime=summary.uptime if summary is not None else None,
    )


def overview_rows(runtime: Runtime, uptimes: dict[str, Summary], *, service: str | None = None,
                  state: State | None = None, search: str = "") -> list[CheckRow]:
    """Every check that passes the filters, down ones first, then by service and name."""
    needle = search.strip().lower()
    rows = []
    for spec in runtime.checks:
        if service is not None and service_name(spec) != service:
            continue
        if needle and needle not in spec.name.lower() and needle not in service_name(spec).lower():
            continue
        row = check_row(spec, runtime.latest.get(spec.name), uptimes.get(spec.name))
        if state is not None and row.state is not state:
            continue
        rows.append(row)
    rows.sort(key=lambda row: (-row.state.rank, row.service, row.name))
    return rows


def paginate(rows: Sequence[CheckRow], number: int, size: int = PAGE_SIZE) -> Page:
    start = (number - 1) * size
    return Page(rows=list(rows[start:start + size]), number=number, size=size, total=len(rows))


def service_rows(runtime: Runtime, only: Collection[str] | None = None) -> list[ServiceRow]:
    """Each service (those in ``only``, in its order, when given) with its checks' states."""
    states: dict[str, list[State]] = {}
    for spec in runtime.checks:
        if not measures_service(spec):
            continue
        states.setdefault(service_name(spec), []).append(state_of(runtime.latest.get(spec.name)))
    names = [name for name in only if name in states] if only is not None else sorted(states)
    return [ServiceRow(name=name, state=service_state(states[name]),
                       up=states[name].count(State.UP), down=states[name].count(State.DOWN),
                       unknown=states[name].count(State.UNKNOWN)) for name in names]


def measures_service(spec: CheckSpec[Any]) -> bool:
    """Whether a check's state is its service's: an SLO's internal check is about the
    service's history, not its state now, so it stays out of service states and bars."""
    return spec.type != "slo"


def checks_of(runtime: Runtime, name: str) -> list[CheckSpec[Any]]:
    """The check called ``name``, or else every check of the service called ``name``."""
    specs = [spec for spec in runtime.checks if spec.name == name]
    return specs or [spec for spec in runtime.checks if service_name(spec) == name]


# -- the cached 24-hour uptime of every check ---------------------------------------------


class SummaryCache:
    """:meth:`Store.summary` of every check over a trailing window, reused for ``ttl`` seconds.

    Over 5,000 checks a summary takes about a second, so a stale one is served
    while a background thread reads the next (stale-while-revalidate); only
    the first reader, or the first after the checks changed, waits for it.
    """

    def __init__(self, runtime: Runtime, window: float = 86400.0, ttl: float = UPTIME_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.window = window
        self.ttl = ttl
        self.clock = clock
        self._value: dict[str, Summary] = {}
        self._names: frozenset[str] = frozenset()
        self._at: float | None = None
        self._lock = asyncio.Lock()
        self._refreshing = threading.Lock()

    async def get(self) -> dict[str, Summary]:
        names = frozenset(spec.name for spec in self.runtime.checks)
        if self._at is None or names != self._names:
            async with self._lock:
                await asyncio.to_thread(self._read_once, names)
        elif self.clock() - self._at >= self.ttl:
            self.refresh_in_background()
        return self._value

    def refresh_in_background(self) -> None:
        """Read the summary again in a daemon thread, unless a read is under way."""
        if not self._refreshing.acquire(blocking=False):
            return

        def work() -> None:
            try:
                self._read(frozenset(spec.name for spec in self.runtime.checks))
            except StoreError as error:  # keep serving the last one
                log.warning("uptime summary not refreshed: %s", error)
            finally:
                self._refreshing.release()

        threading.Thread(target=work, name="tocsin-uptime", daemon=True).start()

    def _read_once(self, names: frozenset[str]) -> None:
        """Read unless a reader (the warm-up thread) got these names in the meantime."""
        with self._refreshing:
            if self._at is None or names != self._names:
                self._read(names)

    def _read(self, names: frozenset[str]) -> None:
        now = time.time()
        value = self.runtime.require_store().summary(names, now - self.window, now,
                                                     latency=False)
        self._value, self._names, self._at = value, names, self.clock()


# -- formatting ----------------------------------------------------------------------------


def fmt_latency(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def fmt_uptime(uptime: float | None) -> str:
    if uptime is None:
        return "—"
    percent = uptime * 100
    if percent >= 99.995 and uptime < 1:
        return "99.99%"  # never round a failure up to a perfect 100%
    return f"{percent:.2f}%" if percent < 100 else "100%"


def fmt_time(at: float | None) -> str:
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def fmt_ago(at: float | None, now: float | None = None) -> str:
    if at is None:
        return "never"
    seconds = max(0.0, (now if now is not None else time.time()) - at)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def templates() -> Jinja2Templates:
    """The page templates, autoescaped (every value a page shows is escaped)."""
    env = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env.env.autoescape = True
    env.env.trim_blocks = True
    env.env.lstrip_blocks = True
    env.env.filters.update(latency=fmt_latency, uptime=fmt_uptime, time=fmt_time, ago=fmt_ago,
                           day=fmt_day)
    return env
