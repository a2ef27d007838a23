"""The ``error_rate`` check: a set of requests, judged by the share that fail.

Every run sends all ``requests`` at once, each on a fresh connection and each
bounded by the check timeout, so a run takes at most one timeout however many
endpoints hang. A request *fails* when it gets no answer (refused, timed out,
not HTTP: the reasons of :func:`~tocsin.probes.http_errors.describe_error`) or
an answer whose status is not in ``expect.status`` (by default anything below
500: a 4xx is the client's mistake, not the service's).

The value is the share of failed requests over the last ``window`` runs, in
percent (0–100), so with ``window: 10`` one bad request of three does not swing
it to 33 % (until ``window`` runs have been made, it is over the runs so far;
a reload starts a new window). The status of a run:

- ERROR when no request got an answer at all: the API is unreachable, and
  ``when: down`` says so;
- FAILING when ``expect.error_rate`` is set and the windowed rate is above it;
- OK otherwise: by default an alert rule (``error_rate > 5%``) judges the ratio.

``details["requests"]`` lists each request of the run with its status, error
and latency, so a notification can say which endpoints failed. Messages name
the method and path as configured, never a header value.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import re
from collections import deque
from dataclasses import dataclass
from time import perf_counter
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from yarl import URL

from tocsin.config.durations import Percent
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
from tocsin.probes.http import StatusSet, check_headers, check_method, check_url
from tocsin.probes.http_errors import TARGET_FAULTS, describe_error
from tocsin.probes.registry import register

DEFAULT_OK_STATUS = "100-499"
"""Statuses that count as success unless ``expect.status`` says otherwise: all but 5xx."""

_MAX_REDIRECTS = 10
_DRAIN_LIMIT = 1024 * 1024  # bytes of a body read (to see it arrive whole) before hanging up
_REQUEST_LINE = re.compile(r"(?P<method>\S+)\s+(?P<path>\S+)")
_REQUEST_HELP = "write a request as 'METHOD /path', e.g. 'GET /api/v1/projects'"


# -- configuration -------------------------------------------------------------------------------


def _request_from_line(value: object) -> object:
    """``"GET /api/v1/projects"`` → ``{method: GET, path: /api/v1/projects}``."""
    if not isinstance(value, str):
        return value
    match = _REQUEST_LINE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"invalid request {value!r}: {_REQUEST_HELP}")
    return {"method": match.group("method"), "path": match.group("path")}


class RequestConfig(BaseModel):
    """One request of an ``error_rate`` check; ``"GET /path"`` is the short form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = "GET"
    path: str
    headers: dict[str, str] = Field(default_factory=dict)  # added to the check's headers
    body: str | None = None
    json_body: Any = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        return _request_from_line(value)

    @field_validator("method", mode="before")
    @classmethod
    def _valid_method(cls, value: object) -> object:
        return check_method(value)

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path {path!r} must start with '/' (it is joined onto the "
                             "service url)")
        return path

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)

    @model_validator(mode="after")
    def _one_body(self) -> RequestConfig:
        if self.body is not None and self.json_body is not None:
            raise ValueError("give either body or json_body, not both")
        return self

    @property
    def label(self) -> str:
        """How messages name the request: ``GET /api/v1/projects``."""
        return f"{self.method} {self.path}"


class ErrorRateExpect(BaseModel):
    """Which answers succeed, and the error rate above which a run is FAILING."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int | str | list[int | str] = DEFAULT_OK_STATUS
    error_rate: Percent | None = None  # a fraction (0.05 for 5%), as written in the config

    @field_validator("status")
    @classmethod
    def _valid_status(cls, value: int | str | list[int | str]) -> int | str | list[int | str]:
        StatusSet.parse(value)
        return value


class ErrorRateCheckConfig(CheckConfig):
    """An ``error_rate`` check: ``requests`` joined onto the service url, sent every run."""

    type: Literal["error_rate"]
    requests: list[RequestConfig]
    headers: dict[str, str] = Field(default_factory=dict)
    window: int = Field(default=1, ge=1, le=10_000)  # runs the rate is computed over
    verify_tls: bool = True
    expect: ErrorRateExpect = Field(default_factory=ErrorRateExpect)

    @field_validator("requests")
    @classmethod
    def _some_requests(cls, requests: list[RequestConfig]) -> list[RequestConfig]:
        if not requests:
            raise ValueError("no requests: list at least one, as 'METHOD /path', "
                             "e.g. 'GET /api/v1/projects'")
        return requests

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)


# -- the probe -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What one request of a run got: a status, or the reason it got none."""

    request: str  # "GET /api/v1/projects"
    status: int | None
    error: str | None
    latency_ms: float
    ok: bool

    @property
    def why(self) -> str:
        """``503`` or ``timed out after 10 s``."""
        return self.error if self.error is not None else str(self.status)

    def as_detail(self) -> dict[str, Any]:
        return {"request": self.request, "status": self.status, "error": self.error,
                "latency_ms": round(self.latency_ms, 3), "ok": self.ok}


@dataclass(frozen=True, slots=True)
class _PreparedRequest:
    config: RequestConfig
    url: URL
    headers: dict[str, str]
    data: bytes | None


@register
class ErrorRateProbe(Probe[ErrorRateCheckConfig]):
    """Send every configured request at once; report the share that failed.

    ``values``: ``error_rate`` (percent of failed requests over the window),
    ``requests`` and ``errors`` (counts over the window), and, when any
    request was answered, ``response_time`` (ms, the slowest answer of the run:
    the endpoint a user waits longest for).
    """

    type: ClassVar[str] = "error_rate"
    config_model: ClassVar[builtins.type[CheckConfig]] = ErrorRateCheckConfig

    def __init__(self, spec: CheckSpec[ErrorRateCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        config = spec.config
        if spec.service_url is None:
            raise ProbeError(f"check {spec.name!r}: an error_rate check needs a service with "
                             "a url to send its requests to")
        try:
            base = check_url(spec.service_url)
        except ValueError as exc:
            raise ProbeError(f"service url: {exc}") from None
        self._requests = [_prepare(base, config.headers, request) for request in config.requests]
        self._ok_status = StatusSet.parse(config.expect.status).codes
        limit = config.expect.error_rate
        self._max_rate = limit * 100 if limit is not None else None
        # (requests, errors) of each of the last `window` runs.
        self._window: deque[tuple[int, int]] = deque(maxlen=config.window)

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        start = perf_counter()
        outcomes = await asyncio.gather(*(self._send(request) for request in self._requests))
        latency_ms = (perf_counter() - start) * 1000
        failed = [outcome for outcome in outcomes if not outcome.ok]
        self._window.append((len(outcomes), len(failed)))
        requests = sum(count for count, _ in self._window)
        errors = sum(count for _, count in self._window)
        rate = errors * 100 / requests
        values: dict[str, float] = {"error_rate": rate, "requests": requests, "errors": errors}
        answered = [outcome.latency_ms for outcome in outcomes if outcome.status is not None]
        if not answered:
            status = CheckStatus.ERROR  # unreachable: what `when: down` is for
        elif self._max_rate is not None and rate > self._max_rate:
            status = CheckStatus.FAILING
        else:
            status = CheckStatus.OK
        if answered:
            values["response_time"] = max(answered)
        return self.new_result(
            status,
            started_at,
            latency_ms=latency_ms,
            message=self._message(outcomes, failed, rate),
            values=values,
            details={"requests": [outcome.as_detail() for outcome in outcomes]},
        )

    async def _send(self, request: _PreparedRequest) -> RequestOutcome:
        label = request.config.label
        start = perf_counter()
        timeout = self.spec.timeout
        try:
            async with asyncio.timeout(timeout):
                async with self.context.fresh_session.request(
                    request.config.method,
                    request.url,
                    headers=request.headers or None,
                    data=request.data,
                    max_redirects=_MAX_REDIRECTS,
                    ssl=self.spec.config.verify_tls,
                ) as response:
                    await _drain(response)
                    status = response.status
        except TARGET_FAULTS as exc:
            error = describe_error(exc, timeout, _MAX_REDIRECTS)
            return RequestOutcome(label, None, error, (perf_counter() - start) * 1000, ok=False)
        latency_ms = (perf_counter() - start) * 1000
        return RequestOutcome(label, status, None, latency_ms, ok=status in self._ok_status)

    def _message(self, outcomes: list[RequestOutcome], failed: list[RequestOutcome],
                 rate: float) -> str:
        """``2 of 3 requests failed: GET /a → 503, GET /b → timed out after 10 s``."""
        runs = len(self._window)
        over = f"error rate {rate:.3g}% over the last {runs} runs" if runs > 1 and rate else ""
        if not failed:
            return over
        if len(failed) == len(outcomes):
            count = "the request failed" if len(outcomes) == 1 \
                else f"all {len(outcomes)} requests failed"
        else:
            count = f"{len(failed)} of {len(outcomes)} requests failed"
        which = ", ".join(f"{outcome.request} → {outcome.why}" for outcome in failed)
        return f"{count}: {which} ({over})" if over else f"{count}: {which}"


def _prepare(base: URL, shared_headers: dict[str, str],
             request: RequestConfig) -> _PreparedRequest:
    url = URL(str(base).rstrip("/") + request.path)
    headers = {**shared_headers, **request.headers}
    data: bytes | None = None
    if request.body is not None:
        data = request.body.encode()
    elif request.json_body is not None:
        data = json.dumps(request.json_body, separators=(",", ":")).encode()
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    return _PreparedRequest(request, url, headers, data)


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read the body (a reply that breaks off mid-body is a failed request), up to a cap."""
    size = 0
    while size <= _DRAIN_LIMIT:
        chunk = await response.content.readany()
        if not chunk:
            return
        size += len(chunk)
    response.close()  # a big body arrives fine: hang up rather than read it all
