"""Heartbeats: what the pings of a ``heartbeat`` check mean, and where they are kept.

Healthchecks' model (SEMANTICS.md). Each heartbeat has a secret token; the job
calls ``/ping/<token>`` (GET, POST or HEAD) when it succeeds, ``/start`` when
it begins, ``/fail`` or ``/<exit-code>`` when it ends, ``/log`` to attach
output without changing state. ``?rid=`` pairs a start with its end and gives
the run's duration. The web layer (:mod:`tocsin.web.pings`) receives pings and
records them in the :class:`HeartbeatBook`; the probe, run by the scheduler like
any other, asks the book what the pings mean now:

- **new**: no ping yet, and the first is not due (Tocsin started expecting it
  when the check was configured);
- **up**: the last signal was a success and the next is not due yet;
- **running**: a start arrived after the last end, less than ``grace`` ago;
- **late**: the next success was due (``period`` after the last one, or the
  next ``cron`` time after it) but ``grace`` has not run out — still OK;
- **down**: ``grace`` ran out too, or a start got no end within ``grace`` — FAILING;
- **failed**: the last signal was ``/fail`` or a non-zero exit code — FAILING.

Cron schedules are evaluated on time-zone-aware datetimes (:mod:`tocsin.config.cron`),
so a job at 02:30 Europe/Berlin is expected at the right instant on both DST days:
at 03:00 when 02:30 does not exist, and once (not twice) when it happens twice.

``values`` (milliseconds, so ``since_last_ping > 2h`` compares as expected):
``since_last_ping``, ``late_by`` (0 until due), ``run_time`` (the last paired
run), and ``exit_code`` when the job sent one.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from croniter import CroniterBadDateError
from pydantic import Field, field_validator, model_validator

from tocsin.config.cron import CronExpression, TimeZoneName, next_fire, zone
from tocsin.config.durations import Duration, Size
from tocsin.probes.base import CheckConfig, CheckSpec, CheckStatus, wall_clock

DEFAULT_PERIOD = 86400.0  # one day
DEFAULT_GRACE = 3600.0  # one hour
DEFAULT_BODY_LIMIT = 10 * 1024
MAX_BODY_LIMIT = 1024 * 1024
DEFAULT_RATE_LIMIT = 60  # pings per minute per token
MIN_TOKEN_LENGTH = 16
MESSAGE_BODY_CHARS = 500  # of the last body, quoted in the result message (the alert)
OPEN_RUNS_KEPT = 100  # starts without an end remembered per heartbeat (by run id)

_TOKEN = re.compile(r"[A-Za-z0-9_\-.~]+")


class PingKind(enum.Enum):
    SUCCESS = "success"
    START = "start"
    FAIL = "fail"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class Ping:
    """One ping as received: what it signalled, when, and what the job sent."""

    check: str
    kind: PingKind
    at: float  # wall clock, seconds since the epoch
    rid: str | None = None
    exit_code: int | None = None
    duration_s: float | None = None  # a success or failure paired with its start
    body: str = ""
    truncated: bool = False  # the body was longer than the check's body_limit
    method: str = "GET"
    source: str = ""  # the client's address


class HeartbeatCheckConfig(CheckConfig):
    """A ``heartbeat`` check: ``token`` (from the environment), and ``period`` or ``cron``."""

    type: Literal["heartbeat"]
    token: str = Field(repr=False)
    period: Duration | None = None
    cron: CronExpression | None = None
    timezone: TimeZoneName = "UTC"
    grace: Duration = DEFAULT_GRACE
    body_limit: Size = DEFAULT_BODY_LIMIT
    rate_limit: int = Field(default=DEFAULT_RATE_LIMIT, ge=1, le=6000)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, token: str) -> str:
        # The message never repeats the token: it is a secret.
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the token must be at least {MIN_TOKEN_LENGTH} characters "
                             "(e.g. `openssl rand -hex 16`)")
        if not _TOKEN.fullmatch(token):
            raise ValueError("the token may contain only letters, digits and - _ . ~ "
                             "(it is part of a URL)")
        return token

    @model_validator(mode="after")
    def _schedule(self) -> HeartbeatCheckConfig:
        if self.period is not None and self.cron is not None:
            raise ValueError("give either period or cron, not both")
        if self.period is not None and self.period < 1:
            raise ValueError("period must be at least 1s")
        if self.grace <= 0:
            raise ValueError("grace must be positive")
        if not 1 <= self.body_limit <= MAX_BODY_LIMIT:
            raise ValueError(f"body_limit must be between 1 B and {MAX_BODY_LIMIT // 1024} KiB")
        if self.cron is not None:
            try:
                next_fire(self.cron, self.timezone, wall_clock())
            except CroniterBadDateError:
                raise ValueError(f"cron expression {self.cron!r} never fires "
                                 "(no such date, e.g. 30 February)") from None
        return self

    @property
    def period_s(self) -> float:
        return DEFAULT_PERIOD if self.period is None else self.period

    def due_after(self, moment: float) -> float:
        """When the next success is due, counting from ``moment`` (the last one)."""
        if self.cron is None:
            return moment + self.period_s
        due = next_fire(self.cron, self.timezone, moment)
        # On the fall-back day a wall-clock time happens twice; a cron daemon runs a
        # job at a fixed time once, so expecting a second ping would be a false alarm.
        while datetime.fromtimestamp(due, zone(self.timezone)).fold:
            due = next_fire(self.cron, self.timezone, due)
        return due

    def schedule_text(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron!r} ({self.timezone}), grace {_human(self.grace)}"
        return f"every {_human(self.period_s)}, grace {_human(self.grace)}"


def token_digest(token: str) -> str:
    """How the book indexes tokens: a lookup never compares secrets byte by byte."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class HeartbeatState:
    """What the pings of one heartbeat have said so far."""

    since: float  # when Tocsin began expecting pings: the first is due a period later
    last_ping: Ping | None = None
    last_success: Ping | None = None
    last_fail: Ping | None = None
    last_start: Ping | None = None
    # Open runs by run id (None: starts sent without one), oldest first.
    open_runs: OrderedDict[str | None, float] = field(default_factory=OrderedDict)

    def apply(self, ping: Ping) -> Ping:
        """Take ``ping`` into account; return it with the run's duration when it ends one."""
        if ping.kind is PingKind.START:
            self.open_runs.pop(ping.rid, None)
            self.open_runs[ping.rid] = ping.at
            while len(self.open_runs) > OPEN_RUNS_KEPT:
                self.open_runs.popitem(last=False)
            self.last_start = ping
        elif ping.kind in (PingKind.SUCCESS, PingKind.FAIL):
            started = self.open_runs.pop(ping.rid, None)
            if started is not None and ping.duration_s is None and ping.at >= started:
                ping = replace(ping, duration_s=ping.at - started)
            if ping.kind is PingKind.SUCCESS:
                self.last_success = ping
            else:
                self.last_fail = ping
        self.last_ping = ping
        return ping

    @property
    def last_end(self) -> Ping | None:
        ends = [p for p in (self.last_success, self.last_fail) if p is not None]
        return max(ends, key=lambda p: p.at) if ends else None

    def running_since(self) -> float | None:
        """The start of the newest run that has not ended, if it is newer than the last end."""
        if not self.open_runs:
            return None
        newest = max(self.open_runs.values())
        end = self.last_end
        return newest if end is None or newest > end.at else None


@dataclass(frozen=True, slots=True)
class Assessment:
    status: CheckStatus
    state: str  # new, up, running, late, down, failed
    message: str
    values: dict[str, float]
    details: dict[str, object]


def assess(config: HeartbeatCheckConfig, state: HeartbeatState, now: float) -> Assessment:
    """What the pings mean at ``now``: the rules in the module docstring, as a pure function."""
    values: dict[str, float] = {}
    details: dict[str, object] = {"schedule": config.schedule_text()}
    last = state.last_ping
    if last is not None:
        values["since_last_ping"] = max(0.0, now - last.at) * 1000
        details["last_ping"] = {"kind": last.kind.value, "at": last.at}
    end = state.last_end
    if end is not None:
        if end.duration_s is not None:
            values["run_time"] = end.duration_s * 1000
        if end.exit_code is not None:
            values["exit_code"] = float(end.exit_code)
        details["body"] = end.body
        details["truncated"] = end.truncated

    def verdict(status: CheckStatus, name: str, message: str) -> Assessment:
        details["state"] = name
        return Assessment(status, name, message, values, details)

    if end is not None and end.kind is PingKind.FAIL:
        code = f" (exit code {end.exit_code})" if end.exit_code is not None else ""
        return verdict(CheckStatus.FAILING, "failed",
                       f"the job reported failure{code} at {_when(end.at)}{_quoted(end.body)}")

    running = state.running_since()
    if running is not None:
        deadline = running + config.grace
        details["started_at"] = running
        if now > deadline:
            return verdict(CheckStatus.FAILING, "down",
                           f"the job started at {_when(running)} and has not finished "
                           f"within the grace time of {_human(config.grace)}")
        return verdict(CheckStatus.OK, "running", f"running since {_when(running)}")

    success = state.last_success
    due = config.due_after(success.at if success is not None else state.since)
    details["due_at"] = due
    values["late_by"] = max(0.0, now - due) * 1000
    if now <= due:
        if success is None:
            return verdict(CheckStatus.OK, "new",
                           f"waiting for the first ping, due by {_when(due)}")
        return verdict(CheckStatus.OK, "up", f"last success at {_when(success.at)}; "
                       f"next due by {_when(due)}")
    if now <= due + config.grace:
        return verdict(CheckStatus.OK, "late", f"late: a ping was due at {_when(due)}; "
                       f"down after {_when(due + config.grace)}")
    if success is None:
        return verdict(CheckStatus.FAILING, "down",
                       f"no ping received; the first was due at {_when(due)} "
                       f"({config.schedule_text()})")
    return verdict(CheckStatus.FAILING, "down",
                   f"no ping since {_when(success.at)}; one was due at {_when(due)} "
                   f"({config.schedule_text()}){_quoted(success.body)}")


class TokenBucket:
    """``rate`` events per minute, in bursts of up to ``rate``."""

    __slots__ = ("capacity", "level", "refill_per_s", "updated")

    def __init__(self, rate: int, now: float) -> None:
        self.capacity = float(rate)
        self.level = float(rate)
        self.refill_per_s = rate / 60.0
        self.updated = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.refill_per_s)
        self.updated = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False

    def retry_after(self) -> float:
        return max(0.0, (1.0 - self.level) / self.refill_per_s)


class HeartbeatBook:
    """Every configured heartbeat: token lookup, rate limits, and the state pings built.

    State is kept by check name, so a config reload keeps it; a heartbeat that
    is no longer configured is forgotten, and its token stops working at once.
    """

    def __init__(self) -> None:
        self._by_digest: dict[str, CheckSpec[HeartbeatCheckConfig]] = {}
        self._specs: dict[str, CheckSpec[HeartbeatCheckConfig]] = {}
        self._states: dict[str, HeartbeatState] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def configure(self, specs: Iterable[CheckSpec[Any]], now: float) -> None:
        specs = [spec for spec in specs if isinstance(spec.config, HeartbeatCheckConfig)]
        self._specs = {spec.name: spec for spec in specs}
        self._by_digest = {token_digest(spec.config.token): spec for spec in specs}
        self._states = {name: self._states.get(name) or HeartbeatState(since=now)
                        for name in self._specs}
        self._buckets = {name: bucket for name, bucket in self._buckets.items()
                         if name in self._specs}

    def names(self) -> list[str]:
        return list(self._specs)

    def spec(self, check: str) -> CheckSpec[HeartbeatCheckConfig] | None:
        return self._specs.get(check)

    def find(self, token: str) -> CheckSpec[HeartbeatCheckConfig] | None:
        """The heartbeat whose token this is; None for an unknown token."""
        return self._by_digest.get(token_digest(token))

    def allow(self, check: str, now: float) -> float | None:
        """None when a ping of ``check`` may go through now, else seconds to wait."""
        spec = self._specs[check]
        bucket = self._buckets.get(check)
        if bucket is None or bucket.capacity != spec.config.rate_limit:
            bucket = self._buckets[check] = TokenBucket(spec.config.rate_limit, now)
        return None if bucket.take(now) else bucket.retry_after()

    def record(self, ping: Ping) -> Ping:
        """Apply a received ping; return it as it should be stored (with its run's duration)."""
        return self._states[ping.check].apply(ping)

    def restore(self, check: str, pings: Iterable[Ping]) -> None:
        """Replay stored pings, oldest first, after a restart."""
        state = self._states.get(check)
        if state is None:
            return
        for ping in pings:
            state.since = min(state.since, ping.at)
            state.apply(ping)

    def state(self, check: str) -> HeartbeatState | None:
        return self._states.get(check)

    def assess(self, check: str, now: float) -> Assessment | None:
        spec, state = self._specs.get(check), self._states.get(check)
        if spec is None or state is None:
            return None
        return assess(spec.config, state, now)


def _quoted(body: str) -> str:
    text = body.strip()
    if not text:
        return ""
    if len(text) > MESSAGE_BODY_CHARS:
        text = text[:MESSAGE_BODY_CHARS] + " …"
    return f"; it said: {text}"


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
