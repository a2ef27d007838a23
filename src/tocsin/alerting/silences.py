"""Silences and maintenance windows: which alerts are recorded but not notified.

Matchers are Alertmanager's: ``name=value``, ``name!=value``, ``name=~regex``,
``name!~regex``; a regex must match the whole label value; a label the alert
does not have reads as the empty string. An alert is matched when every
matcher matches its labels: the rule's labels plus ``service``, ``check``,
``severity``, ``alertname`` (the rule's metric) and ``fingerprint``
(:func:`alert_labels`).

A maintenance window is a recurring silence: a ``cron`` schedule, or
``weekdays`` and a ``start`` time, each with a ``duration`` and a time zone.
A window is active from each start for ``duration`` of elapsed time, so a
two-hour window that opens at 01:00 on the night clocks go forward closes at
04:00 local time. Checks keep running during a window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tocsin.alerting.model import Alert, Matcher, MatchOp, Silence, SilenceState
from tocsin.config.cron import CronExpression, TimeZoneName, previous_fire
from tocsin.config.durations import Duration

_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = {**{day: day for day in _WEEKDAYS},
                  **{name: name[:3] for name in ("monday", "tuesday", "wednesday", "thursday",
                                                  "friday", "saturday", "sunday")}}
_START = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


# -- matchers --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matcher_matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    """One matcher against one label set."""
    value = labels.get(matcher.name, "")
    if matcher.op is MatchOp.EQUAL:
        return value == matcher.value
    if matcher.op is MatchOp.NOT_EQUAL:
        return value != matcher.value
    found = _regex(matcher.value).fullmatch(value) is not None
    return found if matcher.op is MatchOp.REGEX else not found


def matches(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (so no matchers match everything)."""
    return all(matcher_matches(matcher, labels) for matcher in matchers)


def parse_matcher(text: str) -> Matcher:
    """``service=backend``, ``severity!=P4``, ``check=~backend:.*``; quotes around the value
    are dropped. Raise ValueError on anything else, or on a regex that does not compile."""
    match = _MATCHER.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid matcher {text!r}: write name=value, name!=value, "
                         "name=~regex or name!~regex, e.g. service=backend")
    name, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    matcher = Matcher(name, MatchOp(op), value)
    _check_regex(matcher)
    return matcher


def parse_matchers(value: object) -> tuple[Matcher, ...]:
    """Matchers from config: a mapping (each an equality) or a list of matcher strings."""
    if isinstance(value, Mapping):
        matchers = []
        for name, wanted in value.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"invalid label name {name!r}")
            if not isinstance(wanted, str | int | float) or isinstance(wanted, bool):
                raise ValueError(f"the value of {name!r} must be text")
            matchers.append(Matcher(name, MatchOp.EQUAL, str(wanted)))
        return tuple(matchers)
    if isinstance(value, list | tuple):
        return tuple(item if isinstance(item, Matcher) else parse_matcher(_text(item))
                     for item in value)
    raise ValueError("matchers must be a mapping ({service: backend}) or a list of "
                     "strings (['service=backend', 'severity=~P[34]'])")


def _text(item: object) -> str:
    if not isinstance(item, str):
        raise ValueError(f"a matcher must be a string such as 'service=backend', not {item!r}")
    return item


def _check_regex(matcher: Matcher) -> None:
    if matcher.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
        try:
            _regex(matcher.value)
        except re.error as error:
            raise ValueError(f"invalid regex {matcher.value!r} in matcher for "
                             f"{matcher.name!r}: {error}") from None


def format_matcher(matcher: Matcher) -> str:
    return f"{matcher.name}{matcher.op.value}{matcher.value}"


Matchers = Annotated[
    tuple[Matcher, ...],
    PlainValidator(parse_matchers),
    PlainSerializer(lambda matchers: [format_matcher(m) for m in matchers]),
    WithJsonSchema({"anyOf": [{"type": "object"}, {"type": "array",
                                                   "items": {"type": "string"}}]}),
]
"""Matchers as config writes them: ``{service: backend}`` or ``["service=backend"]``."""


# -- alerts ----------------------------------------------------------------------------


def alert_metric(alert: Alert) -> str:
    """The metric part of an alert's fingerprint: ``backend:http:down{…}`` → ``down``."""
    return alert.labels.get("alertname") or \
        alert.fingerprint.split("{", 1)[0].removeprefix(f"{alert.check}:")


def alert_labels(alert: Alert) -> dict[str, str]:
    """The labels silences, maintenance windows and inhibit rules match an alert on."""
    labels = {**alert.labels, "check": alert.check, "severity": alert.severity.value,
              "alertname": alert_metric(alert), "fingerprint": alert.fingerprint}
    if alert.service is not None:
        labels["service"] = alert.service
    return labels


def active_silence(silences: Iterable[Silence], labels: Mapping[str, str],
                   now: float) -> Silence | None:
    """The active silence matching ``labels`` that lasts longest, or None."""
    found: Silence | None = None
    for silence in silences:
        if silence.state(now) is not SilenceState.ACTIVE or not matches(silence.matchers, labels):
            continue
        if found is None or silence.ends_at > found.ends_at:
            found = silence
    return found


# -- maintenance windows ---------------------------------------------------------------


class MaintenanceWindow(BaseModel):
    """A planned, recurring silence (``maintenance:`` in the config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    matchers: Matchers = ()
    cron: CronExpression | None = None
    weekdays: tuple[str, ...] | None = None
    start: str | None = None  # HH:MM, with weekdays
    duration: Duration
    timezone: TimeZoneName = "UTC"
    comment: str = ""

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekday_names(cls, days: Any) -> Any:
        if isinstance(days, str):
            days = [days]
        if not isinstance(days, list | tuple):
            return days
        names = []
        for day in days:
            name = _WEEKDAY_NAMES.get(day.strip().lower()) if isinstance(day, str) else None
            if name is None:
                raise ValueError(f"unknown weekday {day!r}: use {', '.join(_WEEKDAYS)}")
            names.append(name)
        if not names:
            raise ValueError(f"name at least one weekday ({', '.join(_WEEKDAYS)})")
        return tuple(sorted(set(names), key=_WEEKDAYS.index))

    @field_validator("start")
    @classmethod
    def _start_time(cls, start: str | None) -> str | None:
        if start is not None and not _START.fullmatch(start.strip()):
            raise ValueError(f"invalid start {start!r}: use 24-hour HH:MM, e.g. 02:30")
        return start

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, seconds: float) -> float:
        if seconds <= 0:
            raise ValueError("a maintenance window's duration must be longer than zero, e.g. 2h")
        return seconds

    @model_validator(mode="after")
    def _one_schedule(self) -> MaintenanceWindow:
        weekly = self.weekdays is not None or self.start is not None
        if self.cron is not None and weekly:
            raise ValueError("give either `cron` or `weekdays` and `start`, not both")
        if self.cron is None and (self.weekdays is None or self.start is None):
            raise ValueError("a maintenance window needs `cron: '0 2 * * sun'`, or "
                             "`weekdays: [sun]` and `start: '02:00'`")
        return self

    @property
    def schedule(self) -> str:
        """The window's starts as a cron expression."""
        if self.cron is not None:
            return self.cron
        assert self.start is not None and self.weekdays is not None  # by _one_schedule
        hour, minute = self.start.strip().split(":")
        return f"{int(minute)} {int(hour)} * * {','.join(self.weekdays)}"

    def last_start(self, now: float) -> float:
        """The latest start at or before ``now`` (epoch seconds)."""
        return previous_fire(self.schedule, self.timezone, now)

    def active(self, now: float) -> bool:
        """True when a start lies in (now − duration, now]."""
        return self.last_start(now) + self.duration > now

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches(self.matchers, labels)


def active_window(windows: Sequence[MaintenanceWindow], labels: Mapping[str, str],
                  now: float) -> MaintenanceWindow | None:
    """The first maintenance window that is active and matches ``labels``, or None."""
    for window in windows:
        if window.matches(labels) and window.active(now):
            return window
    return None
