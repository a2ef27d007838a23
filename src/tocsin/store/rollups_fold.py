"""Folding results into hour and day rollups, and the rows they are stored as.

:class:`RollupFolder` adds results to the hours and days they fall in: to
the states the writer holds in memory, or to fresh ones (a migration, a
recovery after a crash).
"""

from __future__ import annotations

from typing import Any

from tocsin.probes.base import CheckStatus
from tocsin.store.rollups import (
    Aggregate,
    HourState,
    decode_histogram,
    decode_minutes,
    encode_histogram,
    encode_minute,
)

HOUR = 3600
DAY = 86400
MINUTES = 300

HourKey = tuple[int, int]  # (check_id, hours since the epoch)
DayKey = tuple[int, int]  # (check_id, days since the epoch)

STATUS_CODES = {CheckStatus.OK: 0, CheckStatus.FAILING: 1, CheckStatus.ERROR: 2}
STATUSES = {code: status for status, code in STATUS_CODES.items()}
_CODES_BY_VALUE = {status.value: code for status, code in STATUS_CODES.items()}


def status_code(value: str) -> int:
    """The stored small int of a :class:`CheckStatus` value (``"ok"`` → 0)."""
    return _CODES_BY_VALUE[value]


class RollupFolder:
    """Adds results to the hour and day states in ``hours`` and ``days``, in place.

    A state missing from them is started empty.
    """

    def __init__(self, hours: dict[HourKey, HourState] | None = None,
                 days: dict[DayKey, Aggregate] | None = None) -> None:
        self.hours: dict[HourKey, HourState] = {} if hours is None else hours
        self.days: dict[DayKey, Aggregate] = {} if days is None else days

    def add(self, check_id: int, started_at: float, status: int, latency_us: int | None) -> None:
        seconds = int(started_at // 1)
        hour_key = (check_id, seconds // HOUR)
        hour = self.hours.get(hour_key)
        if hour is None:
            hour = self.hours[hour_key] = HourState(Aggregate(), [None] * 12, [b"\0"] * 12)
        hour.total.add(status, latency_us)
        if hour.minutes is not None:
            slot = seconds % HOUR // MINUTES
            bucket = hour.minutes[slot]
            if bucket is None:
                bucket = hour.minutes[slot] = Aggregate()
            bucket.add(status, latency_us)
            if hour.encoded is not None:
                hour.encoded[slot] = b""  # stale: re-encoded in hour_row()
        day_key = (check_id, seconds // DAY)
        day = self.days.get(day_key)
        if day is None:
            day = self.days[day_key] = Aggregate()
        day.add(status, latency_us)

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The hour rows and the day rows of every state held."""
        hours = [hour_row(key, state) for key, state in self.hours.items()]
        days = [day_row(key, aggregate) for key, aggregate in self.days.items()]
        return hours, days


def _aggregate_columns(aggregate: Aggregate, *, wide: bool = False) -> dict[str, Any]:
    return {
        "count": aggregate.count,
        "failures": aggregate.failures,
        "errors": aggregate.errors,
        "unmeasured": aggregate.count - aggregate.measured,
        "latency_min": aggregate.min_us,
        "latency_max": aggregate.max_us,
        "latency_sum": aggregate.sum_us,
        "histogram": encode_histogram(aggregate.histogram, wide=wide),
    }


def hour_row(key: HourKey, state: HourState) -> dict[str, Any]:
    if state.minutes is not None:
        if state.encoded is None:
            state.encoded = [encode_minute(m) for m in state.minutes]
        else:
            for slot, encoded in enumerate(state.encoded):
                if encoded == b"":
                    state.encoded[slot] = encode_minute(state.minutes[slot])
    row = _aggregate_columns(state.total)
    row["check_id"], row["hour"] = key
    row["minutes"] = state.minutes_blob()
    return row


def day_row(key: DayKey, aggregate: Aggregate) -> dict[str, Any]:
    row = _aggregate_columns(aggregate, wide=True)
    row["check_id"], row["day"] = key
    return row


def to_aggregate(row: Any) -> Aggregate:
    """The aggregate of a stored hour or day row."""
    return Aggregate(
        count=row.count, failures=row.failures, errors=row.errors,
        measured=row.count - row.unmeasured, min_us=row.latency_min, max_us=row.latency_max,
        sum_us=row.latency_sum, histogram=decode_histogram(row.histogram),
    )


def to_hour_state(row: Any) -> HourState:
    """The writer's state of a stored hour row."""
    minutes = None if row.minutes is None else decode_minutes(row.minutes)
    encoded = None if minutes is None else [encode_minute(m) for m in minutes]
    return HourState(to_aggregate(row), minutes, encoded)
