"""Cron expressions and IANA time zones: validated at load, evaluated DST-safe.

Schedules are evaluated on time-zone-aware datetimes (croniter with
:mod:`zoneinfo`), so ``0 9 * * *`` in Europe/Berlin is 09:00 local time on
both sides of a DST change. On the spring-forward day a time that does not
exist (02:30) fires at the first time that does (03:00); on the fall-back day
a time that happens twice fires twice.
"""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, croniter
from pydantic import AfterValidator


def check_timezone(name: str) -> str:
    """Refuse a name that is not an IANA time zone, suggesting the closest one."""
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, _zone_names(), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else " (e.g. UTC or Europe/Berlin)"
        raise ValueError(f"unknown time zone {name!r}{hint}") from None
    return name


def check_cron(expression: str) -> str:
    """Refuse an expression croniter cannot read, saying what a valid one looks like."""
    try:
        croniter(expression)
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise ValueError(f"invalid cron expression {expression!r} ({error}): "
                         "use five fields, minute hour day month weekday, "
                         "e.g. '0 9 * * *' for 09:00 every day") from None
    return expression


TimeZoneName = Annotated[str, AfterValidator(check_timezone)]
"""An IANA time zone name (``UTC``, ``Europe/Berlin``), checked at load."""

CronExpression = Annotated[str, AfterValidator(check_cron)]
"""A cron expression, checked at load."""


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def previous_fire(expression: str, timezone: str, now: float) -> float:
    """The latest time ≤ ``now`` the schedule fires, as epoch seconds."""
    # croniter's get_prev excludes its start time; nudge past it so that a
    # schedule firing exactly at ``now`` counts.
    start = datetime.fromtimestamp(now, zone(timezone)) + timedelta(microseconds=1)
    return float(croniter(expression, start).get_prev(datetime).timestamp())


def next_fire(expression: str, timezone: str, now: float) -> float:
    """The earliest time > ``now`` the schedule fires, as epoch seconds."""
    start = datetime.fromtimestamp(now, zone(timezone))
    return float(croniter(expression, start).get_next(datetime).timestamp())


@cache
def _zone_names() -> list[str]:
    return sorted(available_timezones())
