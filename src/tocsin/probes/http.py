"""The ``http`` check: one request, judged on status, time, body and headers.

A run is OK when the target answered and every condition of ``expect`` holds,
FAILING when it answered but a condition does not hold (the message names each
one), and ERROR when it could not be asked: refused, timed out, not HTTP, a bad
certificate, a redirect loop. The whole request (connect, headers, body) is
bounded by the check timeout, and at most ``max_body`` bytes of the body are
read: a target that hangs, drips or streams gigabytes costs one timeout or one
capped read, never the process.

A JSON answer that is a health document (``tocsin.health``, the IETF
``application/health+json`` draft, Spring Boot's actuator) is read as one
(:mod:`tocsin.probes.http_health`): ``details["health"]`` lists the failing
sub-checks, ``unhealthy`` fails the check naming them, and ``degraded`` keeps
it OK with a message naming them and ``health_degraded = 1``. Other answers
cost one Content-Type lookup more than before.

Exceptions of aiohttp, ssl and the OS never leave :meth:`HTTPProbe.run`:
:func:`~tocsin.probes.http_errors.describe_error` turns them into a short
message at this boundary. Messages never carry header values or the URL
(either may hold a secret).
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Annotated, Any, ClassVar, Literal

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDict
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from yarl import URL

from tocsin.config.durations import Duration, Size
from tocsin.probes.base import (
    CheckConfig,
    CheckResult,
    CheckSpec,
    CheckStatus,
    Probe,
    ProbeError,
    wall_clock,
)
from tocsin.probes.context import ProbeContext, RequestTimings, timing_into
from tocsin.probes.http_errors import TARGET_FAULTS, describe_error
from tocsin.probes.http_health import (
    HEALTH_BODY_LIMIT,
    HealthDocument,
    HealthState,
    is_json_media,
    read_health,
)
from tocsin.probes.jsonpath import MISSING, JSONPath, json_equal
from tocsin.probes.registry import register

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DEFAULT_STATUS = "200-399"

_STATUS_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)
_STATUS_RANGE = re.compile(r"(\d{3})\s*-\s*(\d{3})")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


# -- configuration -------------------------------------------------------------------------------


def check_url(text: str) -> URL:
    """``text`` as an absolute http(s) URL with a host; ValueError otherwise."""
    lowered = text.strip().lower()
    if not lowered.startswith(("http://", "https://")):
        if "://" in lowered:
            scheme = lowered.split("://", 1)[0]
            raise ValueError(f"URL scheme must be http or https, not {scheme!r}")
        raise ValueError("URL without scheme: write http://… or https://…")
    try:
        url = URL(text.strip())
    except ValueError as exc:
        raise ValueError(f"invalid URL: {exc}") from None
    if not url.host:
        raise ValueError("URL without host: write e.g. http://127.0.0.1:8000/health")
    return url


def _status_codes(item: int | str) -> range:
    if isinstance(item, str) and item.strip().isdigit():
        item = int(item)
    if isinstance(item, int):
        if not 100 <= item <= 599:
            raise ValueError(f"status {item} is not an HTTP status (100-599)")
        return range(item, item + 1)
    if match := _STATUS_CLASS.fullmatch(item.strip()):
        first = int(match.group(1)) * 100
        return range(first, first + 100)
    if match := _STATUS_RANGE.fullmatch(item.strip()):
        low, high = int(match.group(1)), int(match.group(2))
        if not 100 <= low <= high <= 599:
            raise ValueError(f"status range {item!r} must go from low to high within 100-599")
        return range(low, high + 1)
    raise ValueError(f"invalid status {item!r}: write e.g. 200, '2xx' or '200-299'")


@dataclass(frozen=True, slots=True)
class StatusSet:
    """The accepted statuses of a check, and how the config spelled them."""

    codes: frozenset[int]
    text: str

    @classmethod
    def parse(cls, spec: int | str | list[int | str]) -> StatusSet:
        items = spec if isinstance(spec, list) else [spec]
        if not items:
            raise ValueError("status list is empty")
        codes: set[int] = set()
        for item in items:
            codes.update(_status_codes(item))
        return cls(frozenset(codes), ", ".join(str(item).strip() for item in items))


def _compile_regex(value: object) -> object:
    if isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


Regex = Annotated[re.Pattern[str], BeforeValidator(_compile_regex)]


class HTTPExpect(BaseModel):
    """What an answer must satisfy to count as OK."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    status: int | str | list[int | str] = DEFAULT_STATUS
    response_time: Duration | None = None
    body_contains: str | None = None
    body_regex: Regex | None = None
    json_values: dict[str, Any] | None = Field(default=None, alias="json")
    headers: dict[str, str] | None = None

    @field_validator("status")
    @classmethod
    def _valid_status(cls, value: int | str | list[int | str]) -> int | str | list[int | str]:
        StatusSet.parse(value)
        return value

    @field_validator("json_values")
    @classmethod
    def _valid_paths(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for path in value or {}:
            JSONPath.parse(path)
        return value

    @property
    def reads_body(self) -> bool:
        """Whether a condition looks at the body (else it is read and dropped)."""
        return bool(self.body_contains is not None or self.body_regex or self.json_values)


def check_method(value: object) -> object:
    """An HTTP method, upper-cased; anything but a known method is refused."""
    if isinstance(value, str):
        method = value.strip().upper()
        if method not in METHODS:
            raise ValueError(f"method {value!r} is not one of {', '.join(sorted(METHODS))}")
        return method
    return value


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Request headers: valid names and one-line values (a newline would start a header)."""
    for name, text in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if "\r" in text or "\n" in text:
            raise ValueError(f"header {name!r}: value must be one line")
    return headers


class HTTPCheckConfig(CheckConfig):
    """An ``http`` check: ``path`` (joined onto the service URL) or a full ``url``."""

    type: Literal["http"]
    path: str | None = None
    url: str | None = None
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=10, ge=0)
    verify_tls: bool = True
    keepalive: bool = False
    max_body: Size = 1024 * 1024
    expect: HTTPExpect = Field(default_factory=HTTPExpect)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_url(value)
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _valid_method(cls, value: object) -> object:
        return check_method(value)

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)

    @model_validator(mode="after")
    def _one_target_one_body(self) -> HTTPCheckConfig:
        if self.path is not None and self.url is not None:
            raise ValueError("give either path (joined onto the service url) or url, not both")
        if self.url is not None and _credentials_conflict(URL(self.url), self.headers):
            raise ValueError("give credentials in the url or an Authorization header, not both")
        if self.body is not None and self.json_body is not None:
            raise ValueError("give either body or json_body, not both")
        return self


# -- the probe -----------------------------------------------------------------------------------


def format_size(size: int) -> str:
    """``1048576`` → ``1 MiB``; sizes that are not whole units stay in bytes."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def _target_url(config: HTTPCheckConfig, service_url: str | None) -> URL:
    if config.url is not None:
        return check_url(config.url)
    if service_url is None:
        raise ProbeError("http check needs a target: set url, or a url on its service")
    try:
        base = check_url(service_url)
    except ValueError as exc:
        raise ProbeError(f"service url: {exc}") from None
    path = config.path if config.path is not None else "/"
    return URL(str(base).rstrip("/") + "/" + path.lstrip("/"))


def _credentials_conflict(url: URL, headers: Mapping[str, str]) -> bool:
    has_authorization = any(name.lower() == "authorization" for name in headers)
    return has_authorization and (url.user is not None or url.password is not None)


@register
class HTTPProbe(Probe[HTTPCheckConfig]):
    """Send one HTTP request and judge the answer.

    ``values``: ``response_time`` (ms, headers and body up to the cap),
    ``status_code``, and for a healthy or degraded health document
    ``health_degraded`` (0 or 1; absent when unhealthy, so that a degraded
    alert keeps its state while the down alert speaks). ``timings`` in ms:
    ``dns`` (the lookup, often answered from a 60 s cache; absent for an IP
    address), ``connect`` (opening the connection: DNS, TCP and, for https, the
    TLS handshake; absent on a pooled connection), and from the start of the
    request ``first_byte`` (final response headers received, after any
    redirects) and ``total``.
    """

    type: ClassVar[str] = "http"
    config_model: ClassVar[builtins.type[CheckConfig]] = HTTPCheckConfig

    def __init__(self, spec: CheckSpec[HTTPCheckConfig], context: ProbeContext) -> None:
        super().__init__(spec, context)
        config = spec.config
        expect = config.expect
        self._url = _target_url(config, spec.service_url)
        if _credentials_conflict(self._url, config.headers):
            raise ProbeError(
                f"check {spec.name!r}: credentials in the service url and an Authorization "
                "header cannot both be used"
            )
        self._by_name = not _is_ip_address(self._url.host or "")
        self._method = config.method
        headers = CIMultiDict(config.headers)
        self._data: bytes | None = None
        if config.body is not None:
            self._data = config.body.encode()
        elif config.json_body is not None:
            self._data = json.dumps(config.json_body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        self._headers = headers or None
        self._timeout = spec.timeout
        self._ssl: bool = config.verify_tls
        self._max_body = config.max_body
        self._status = StatusSet.parse(expect.status)
        self._max_ms = expect.response_time * 1000 if expect.response_time is not None else None
        self._contains = expect.body_contains
        self._regex = expect.body_regex
        self._json = [(JSONPath.parse(p), v) for p, v in (expect.json_values or {}).items()]
        self._expect_headers = list((expect.headers or {}).items())
        self._reads_body = expect.reads_body

    def _session(self) -> aiohttp.ClientSession:
        if self.spec.config.keepalive:
            return self.context.keepalive_session
        return self.context.fresh_session

    async def run(self) -> CheckResult:
        started_at = wall_clock()
        timings = RequestTimings()
        config = self.spec.config
        start = perf_counter()
        headers_at = 0.0
        try:
            with timing_into(timings):
                async with asyncio.timeout(self._timeout):
                    async with self._session().request(
                        self._method,
                        self._url,
                        headers=self._headers,
                        data=self._data,
                        allow_redirects=config.follow_redirects,
                        max_redirects=config.max_redirects,
                        ssl=self._ssl,
                    ) as response:
                        headers_at = perf_counter()
                        body, truncated = await self._read_body(response)
                        end = perf_counter()
        except TARGET_FAULTS as exc:
            failed_at = perf_counter()
            message = describe_error(exc, self._timeout, config.max_redirects)
            if isinstance(exc, TimeoutError):
                message += self._timeout_phase(timings, headers_at)
            return CheckResult.error(
                self.spec.name, started_at, message, latency_ms=(failed_at - start) * 1000
            )
        latency_ms = (end - start) * 1000
        failures = self._judge(response, body, truncated, latency_ms)
        notes: list[str] = []
        values = {"response_time": latency_ms, "status_code": response.status}
        details: dict[str, Any] = {}
        health = self._read_health(response, body, truncated)
        if health is not None:
            details["health"] = health.details()
            if health.state is HealthState.UNHEALTHY:  # even under a 200: the app says so
                failures.append(health.summary())
            elif health.state is HealthState.DEGRADED:
                notes.append(health.summary())  # still OK: the app serves; a rule may alert
            # Unhealthy leaves it out: the down alert speaks, a degraded one keeps its state.
            if health.state is not HealthState.UNHEALTHY:
                values["health_degraded"] = int(health.state is HealthState.DEGRADED)
        return self.new_result(
            CheckStatus.FAILING if failures else CheckStatus.OK,
            started_at,
            latency_ms=latency_ms,
            message="; ".join(failures + notes),
            code=response.status,
            values=values,
            timings=self._timings(timings, start, headers_at, end),
            details=details,
        )

    async def _read_body(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """Up to ``max_body`` bytes of the body, and whether there was more."""
        limit = self._max_body + 1  # one byte more tells a cut body from an exact fit
        content = response.content
        keep = self._reads_body
        # A JSON answer may be a health document: keep it if it is small enough to be one.
        keep_for_health = not keep and is_json_media(response.headers.get(hdrs.CONTENT_TYPE))
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = await content.read(limit - size)
            if not chunk:
                break
            size += len(chunk)
            if keep:
                chunks.append(chunk)
            elif keep_for_health:
                if size > HEALTH_BODY_LIMIT:
                    keep_for_health = False
                    chunks.clear()
                else:
                    chunks.append(chunk)
        truncated = size > self._max_body
        if truncated:
            response.close()  # the rest is never read: drop the connection, not drain it
        if not chunks:
            return b"", truncated
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return body[: self._max_body], truncated

    @staticmethod
    def _read_health(
        response: aiohttp.ClientResponse, body: bytes, truncated: bool
    ) -> HealthDocument | None:
        if not body or truncated:
            return None
        return read_health(response.headers.get(hdrs.CONTENT_TYPE), body)

    def _judge(
        self, response: aiohttp.ClientResponse, body: bytes, truncated: bool, latency_ms: float
    ) -> list[str]:
        failures: list[str] = []
        if response.status not in self._status.codes:
            failures.append(f"status {response.status} not in {self._status.text}")
        if self._max_ms is not None and latency_ms > self._max_ms:
            failures.append(f"response time {latency_ms:.0f} ms > {self._max_ms:.0f} ms")
        for name, expected in self._expect_headers:
            actual = response.headers.get(name)
            if actual is None:
                failures.append(f"header {name} missing")
            elif actual != expected:
                failures.append(f"header {name} differs from the expected value")
        if self._reads_body:
            content_failures = self._judge_body(response, body)
            if content_failures and truncated:
                content_failures[-1] += f" (body truncated at {format_size(self._max_body)})"
            failures.extend(content_failures)
        return failures

    def _judge_body(self, response: aiohttp.ClientResponse, body: bytes) -> list[str]:
        failures: list[str] = []
        text = _decode(body, response.charset)
        if self._contains is not None and self._contains not in text:
            failures.append(f"body does not contain {self._contains!r}")
        if self._regex is not None and self._regex.search(text) is None:
            failures.append(f"body does not match /{self._regex.pattern}/")
        if self._json:
            try:
                document = json.loads(text)
            except ValueError as exc:
                failures.append(f"body is not JSON ({exc})")
                return failures
            for path, expected in self._json:
                actual = path.find(document)
                if actual is MISSING:
                    failures.append(f"{path.text} is missing, expected {expected!r}")
                elif not json_equal(actual, expected):
                    failures.append(f"{path.text} is {_short(actual)}, expected {expected!r}")
        return failures

    def _timings(
        self, timings: RequestTimings, start: float, headers_at: float, end: float
    ) -> Mapping[str, float]:
        phases = {"first_byte": (headers_at - start) * 1000, "total": (end - start) * 1000}
        if timings.dns_end and self._by_name:
            phases["dns"] = (timings.dns_end - timings.dns_start) * 1000
        if timings.connect_end:
            phases["connect"] = (timings.connect_end - timings.connect_start) * 1000
        return phases

    @staticmethod
    def _timeout_phase(timings: RequestTimings, headers_at: float) -> str:
        if headers_at:
            return " reading the body"
        if timings.connect_start and not timings.connect_end:
            return " connecting"
        return " waiting for the response"


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
