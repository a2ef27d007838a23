"""The ``metric`` check: one number, from a JSON endpoint, a SQL query, or pushed to the API.

Exactly one source per check:

- ``url:`` and ``json_path:``: GET the URL (bounded by the check timeout, the
  body capped at ``max_body``), decode JSON, read the number at the path;
- ``query:`` and ``database:``: run the read-only query on an entry of the
  top-level ``databases:`` section (the ``database`` check's backends); the
  first row must hold one numeric column;
- ``push: true``: the newest point pushed to ``POST /api/v1/metrics`` named
  ``metric:`` (default: the check's name) whose labels include ``match:``.
  With no matching point for ``absent_after`` (default 3 × interval) the
  result is FAILING and has no value, so that ``absent`` holds.

The number is ``values["value"]``. Something that is not a number (a string,
null, a boolean, an object), a missing path, or an answer that is not JSON
makes an ERROR result saying what was found where: never an exception.

Change conditions (``drop > 50% vs 1w``) compare the value with its own value
an offset earlier. The probe collects the offsets its rules need and, for
each, reads from the store the stored value nearest to ``now - offset``
within ``max(interval, 5 min)``, reporting it as ``values["value@-1w"]``
(:func:`~tocsin.alerting.conditions.baseline_key`); ``details["baselines"]``
says which was found, at which time, or ``"no baseline"``.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import math
from collections.abc import Iterable, Mapping
from time import perf_counter
from typing import Any, ClassVar, Literal

import aiohttp
from multidict import CIMultiDict
from pydantic import Field, field_validator, model_validator

from tocsin.alerting.conditions import AWAITING_DATA, PRIMARY_VALUE, ChangeCondition, baseline_key
from tocsin.config.durations import Duration, Size, format_duration
from tocsin.probes.base import (
    CheckConfig,
    CheckResult,
    CheckSpec,
    CheckStatus,
    Probe,
    ProbeError,
    wall_clock,
)
from tocsin.probes.context import ProbeContext
from tocsin.probes.database import (
    DatabaseCheckConfig,
    DatabaseFault,
    DatabaseReader,
    check_query,
    format_seconds,
    open_reader,
)
from tocsin.probes.http import check_headers, check_method, check_url, format_size
from tocsin.probes.http_errors import TARGET_FAULTS, describe_error
from tocsin.probes.jsonpath import MISSING, JSONPath
from tocsin.probes.metric_push import PushSelector
from tocsin.probes.registry import register

BASELINE_TOLERANCE = 300.0  # seconds: a baseline may be this far from now - offset (or 1 interval)
_HISTORY_ROWS = 1000  # results read around a baseline's time: enough for 1 s intervals
_SHOWN = 60  # characters of a non-numeric value quoted in a message


class MetricCheckConfig(CheckConfig):
    """A ``metric`` check: ``url`` + ``json_path``, ``query`` + ``database``, or ``push``."""

    type: Literal["metric"]
    url: str | None = None
    json_path: str | None = None
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True
    max_body: Size = 1024 * 1024
    query: str | None = None
    database: str | None = None
    push: bool = False
    metric: str | None = Field(default=None, min_length=1, max_length=200)
    match: dict[str, str] = Field(default_factory=dict)
    absent_after: Duration | None = None

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str | None) -> str | None:
        if url is not None:
            check_url(url)
        return url

    @field_validator("json_path")
    @classmethod
    def _valid_path(cls, path: str | None) -> str | None:
        return None if path is None else JSONPath.parse(path).text

    @field_validator("method", mode="before")
    @classmethod
    def _valid_method(cls, method: object) -> object:
        return check_method(method)

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)

    @field_validator("query")
    @classmethod
    def _read_only_query(cls, query: str | None) -> str | None:
        return None if query is None else check_query(query)

    @field_validator("absent_after")
    @classmethod
    def _positive(cls, seconds: float | None) -> float | None:
        if seconds is not None and seconds < 1:
            raise ValueError("absent_after must be at least 1s, e.g. 10m")
        return seconds

    @model_validator(mode="after")
    def _one_source(self) -> MetricCheckConfig:
        sources = [key for key, given in (("url", self.url is not None),
                                          ("query", self.query is not None),
                                          ("push", self.push)) if given]
        if len(sources) != 1:
            found = f"it has {' and '.join(sources)}" if sources else "it has none"
            raise ValueError("a metric check has exactly one source: url (with json_path), "
                             f"query (with database) or push: true; {found}")
        source = sources[0]
        if (self.url is None) != (self.json_path is None):
            raise ValueError("url and json_path go together: the number is read at json_path")
        if (self.query is None) != (self.database is None):
            raise ValueError("query and database go together: database names an entry of "
                             "the top-level `databases:` section")
        pushed_only = [key for key in ("metric", "match", "absent_after")
                       if key in self.model_fields_set]
        if source != "push" and pushed_only:
            raise ValueError(f"{', '.join(pushed_only)} only apply to push: true")
        return self

    @property
    def source(self) -> Literal["url", "query", "push"]:
        if self.url is not None:
            return "url"
        return "query" if self.query is not None else "push"


def push_selectors(specs: Iterable[CheckSpec[Any]]) -> list[PushSelector]:
    """What each configured push check listens for."""
    return [PushSelector(spec.name, spec.config.metric or spec.name, dict(spec.config.match))
            for spec in specs
            if isinstance(spec.config, MetricCheckConfig) and spec.config.push]


def absent_after(spec: CheckSpec[MetricCheckConfig]) -> float:
    """Seconds without a matching point after which a pushed metric is absent."""
    configured = spec.config.absent_after
    return configured if configured is not None else 3 * spec.interval


class NotANumber(Exception):
    """The source answered, but not with a number: the message says what, and where."""


def as_number(found: Any, where: str) -> float:
    """``found`` as a float; :class:`NotANumber` for a string, null, boolean, object, NaN."""
    if found is MISSING:
        raise NotANumber(f"{where} is missing")
    if isinstance(found, bool) or not isinstance(found, int | float):
        raise NotANumber(f"{where} is {_kind(found)} {_shown(found)}, not a number")
    number = float(found)
    if not math.isfinite(number):
        raise NotANumber(f"{where} is {found}, not a finite number")
    return number


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def _database_reader(spec: CheckSpec[MetricCheckConfig],
                     databases: Mapping[str, DatabaseCheckConfig]) -> DatabaseReader:
    name = spec.config.database
    entry = databases.get(name or "")
    if entry is None:
        raise ProbeError(f"check {spec.name!r}: unknown database {name!r}")
    return open_reader(spec.name, entry, spec.config.query, 0, spec.timeout)


@register
class MetricProbe(Probe[MetricCheckConfig]):
    """Read one number; add the baselines its change conditions compare it with."""

    type: ClassVar[str] = "metric"
    config_model: ClassVar[builtins.type[CheckConfig]] = MetricCheckConfig

    def __init__(self, spec: CheckSpec[MetricCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        config = spec.config
        self._offsets = sorted({rule.when.offset for rule in config.alerts
                                if isinstance(rule.when, ChangeCondition)})
        self._reader: DatabaseReader | None = None
        if config.source == "query":
            self._reader = _database_reader(spec, context.databases)
        self._url = check_url(config.url) if config.url is not None else None
        self._path = JSONPath.parse(config.json_path) if config.json_path else None
        self._headers = CIMultiDict(config.headers) or None
        self._absent_after = absent_after(spec)

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        source = self.spec.config.source
        if source == "url":
            result = await self._from_url(started_at)
        elif source == "query":
            result = await self._from_query(started_at)
        else:
            result = self._from_push(started_at)
        if self._offsets and PRIMARY_VALUE in result.values:
            await self._add_baselines(result)
        return result

    # -- sources -------------------------------------------------------------------------

    async def _from_url(self, started_at: float) -> CheckResult:
        assert self._path is not None and self._url is not None
        config, timeout = self.spec.config, self.spec.timeout
        start = perf_counter()
        try:
            async with asyncio.timeout(timeout):
                async with self.context.fresh_session.request(
                    config.method, self._url, headers=self._headers,
                    ssl=config.verify_tls,
                ) as response:
                    status = response.status
                    body, truncated = await _read_capped(response, config.max_body)
        except TARGET_FAULTS as exc:
            return CheckResult.error(self.spec.name, started_at, describe_error(exc, timeout, 10),
                                     latency_ms=(perf_counter() - start) * 1000)
        latency_ms = (perf_counter() - start) * 1000
        details = {"source": "url", "path": self._path.text}
        if not 200 <= status < 300:
            return self._error(started_at, f"status {status}: no number read", latency_ms, status)
        if truncated:
            return self._error(started_at, f"the body is larger than {format_size(config.max_body)}"
                               " (max_body)", latency_ms, status)
        try:
            document = json.loads(body)
            value = as_number(self._path.find(document), self._path.text)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return self._error(started_at, f"the body is not JSON ({_first_line(exc)})",
                               latency_ms, status)
        except NotANumber as exc:
            return self._error(started_at, str(exc), latency_ms, status)
        return self.new_result(CheckStatus.OK, started_at, latency_ms=latency_ms, code=status,
                               values={PRIMARY_VALUE: value}, details=details)

    async def _from_query(self, started_at: float) -> CheckResult:
        assert self._reader is not None
        start = perf_counter()
        try:
            # The backends keep their own deadlines; this one only catches a bug in them.
            async with asyncio.timeout(self.spec.timeout + 1.0):
                reading = await self._reader.read()
        except DatabaseFault as fault:
            return self._error(started_at, str(fault), (perf_counter() - start) * 1000)
        except TimeoutError:
            return self._error(started_at, f"timed out after {format_seconds(self.spec.timeout)}",
                               (perf_counter() - start) * 1000)
        latency_ms = (perf_counter() - start) * 1000
        row = reading.first_row
        if row is None:
            return self._error(started_at, "the query returned no row", latency_ms)
        if len(row) != 1:
            return self._error(started_at, f"the query must return one column, not {len(row)} "
                               f"({', '.join(row)})", latency_ms)
        column, found = next(iter(row.items()))
        try:
            value = as_number(found, f"column {column!r}")
        except NotANumber as exc:
            return self._error(started_at, str(exc), latency_ms)
        return self.new_result(CheckStatus.OK, started_at, latency_ms=latency_ms,
                               values={PRIMARY_VALUE: value},
                               details={"source": "query", "database": self.spec.config.database,
                                        "column": column})

    def _from_push(self, started_at: float) -> CheckResult:
        name = self.spec.config.metric or self.spec.name
        book = self.context.metrics
        latest = book.latest(self.spec.name)
        limit = format_duration(self._absent_after)
        details: dict[str, Any] = {"source": "push", "metric": name,
                                   "absent_after_s": self._absent_after}
        if latest is None:
            if started_at - book.started_at < self._absent_after:
                details[AWAITING_DATA] = True  # just started: absence cannot be told yet
                return self.new_result(
                    CheckStatus.OK, started_at, details=details,
                    message=f"waiting for a first point of {name!r} (absent after {limit})")
            return self.new_result(CheckStatus.FAILING, started_at, details=details,
                                   message=f"no point of {name!r} for {limit}")
        point = latest.point
        details["point"] = {"timestamp": point.timestamp, "labels": dict(point.labels),
                            "received_at": latest.received_at}
        if started_at - latest.received_at > self._absent_after:
            return self.new_result(CheckStatus.FAILING, started_at, details=details,
                                   message=f"no point of {name!r} for {limit} "
                                           f"(the last was {point.value:g})")
        return self.new_result(CheckStatus.OK, started_at, values={PRIMARY_VALUE: point.value},
                               details=details)

    def _error(self, started_at: float, message: str, latency_ms: float,
               code: int | None = None) -> CheckResult:
        result = CheckResult.error(self.spec.name, started_at, message, latency_ms=latency_ms)
        result.code = code
        return result

    # -- baselines -----------------------------------------------------------------------

    async def _add_baselines(self, result: CheckResult) -> None:
        """Put the stored value nearest to each ``now - offset`` into the result's values."""
        from tocsin.store.base import StoreError  # the store imports the probes: not at load

        store = self.context.store
        found: dict[float, tuple[float, float]] = {}
        note = "no baseline"
        if store is not None:
            try:
                async with asyncio.timeout(self.spec.timeout):
                    found = await asyncio.to_thread(self._read_baselines, result.started_at)
            except (StoreError, TimeoutError) as exc:
                note = f"no baseline: the store could not be read ({type(exc).__name__})"
        values = dict(result.values)
        baselines: dict[str, Any] = {}
        for offset in self._offsets:
            label = format_duration(offset)
            if offset not in found:
                baselines[label] = note
            elif found[offset][1] == 0:
                baselines[label] = "no baseline: it was 0"  # no change is a percentage of 0
            else:
                at, value = found[offset]
                values[baseline_key(offset)] = value
                baselines[label] = {"at": at, "value": value}
        result.values = values
        result.details = {**result.details, "baselines": baselines}

    def _read_baselines(self, now: float) -> dict[float, tuple[float, float]]:
        """Offset → (time, value) of the stored result with a value nearest to ``now - offset``."""
        store = self.context.store
        assert store is not None
        tolerance = max(self.spec.interval, BASELINE_TOLERANCE)
        found: dict[float, tuple[float, float]] = {}
        for offset in self._offsets:
            at = now - offset
            history = store.history(self.spec.name, since=at - tolerance, until=at + tolerance,
                                    limit=_HISTORY_ROWS)
            candidates = [(abs(old.started_at - at), old.started_at, old.values[PRIMARY_VALUE])
                          for old in history if PRIMARY_VALUE in old.values]
            if candidates:
                _, when, value = min(candidates)
                found[offset] = (when, float(value))
        return found


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await response.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        response.close()  # the rest is never read: drop the connection, not drain it
        return b"", True
    return b"".join(chunks), False


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
