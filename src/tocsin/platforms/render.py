"""``type: render``: the Render REST API (``/v1``), as ``shared/RENDER_API.md`` describes it.

Every call sends ``Authorization: Bearer <key>`` and ``Accept: application/json``
and is bounded by the platform's ``timeout``. Answers are parsed here, at the
edge, into :class:`~tocsin.platforms.base.Deploy` and
:class:`~tocsin.platforms.base.PlatformService`; the status code alone decides
an error, never the text:

- 401, 403: permanent, "Render refused the API key for service srv-…";
- 404: permanent, unknown service (or deploy) id;
- 429: transient, waiting ``Retry-After``, else ``Ratelimit-Reset`` (seconds,
  or an epoch when above 1e9);
- 408, 5xx, timeouts, refused or reset connections: transient;
- other 4xx (400, 406, 409, 410): permanent;
- a 2xx whose body is not the JSON the contract describes: transient, "malformed answer".

Rate limits. Render allows 400 GETs a minute per user. After a 429, or an
answer saying ``Ratelimit-Remaining: 0``, this client refuses to call again
until the window resets (plus a little jitter, so that the checks sharing it
do not all call at the same instant): each refused call raises a transient
:class:`PlatformError` at once, so a flood of checks costs no requests.

An empty ``api_key`` (``${RENDER_API_KEY:-}`` with the variable unset) means
"not configured": every call fails permanently without a request.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, TypeAdapter, ValidationError, field_validator

from tocsin.channels.endpoints import check_endpoint_url
from tocsin.platforms.base import (
    Deploy,
    Platform,
    PlatformConfig,
    PlatformError,
    PlatformService,
)
from tocsin.platforms.registry import register

DEFAULT_BASE_URL = "https://api.render.com/v1"
RESPONSE_CAP = 4 * 1024 * 1024  # bytes; 100 deploys are far smaller
DEFAULT_RATE_LIMIT_WAIT = 60.0  # seconds, when a 429 says nothing about when to come back
MAX_JITTER = 5.0  # seconds added at most to a rate-limit wait

T = TypeVar("T")


class RenderConfig(PlatformConfig):
    """``api_key`` (from ``${RENDER_API_KEY}``) and ``base_url`` (a local stand-in in tests)."""

    type: Literal["render"]
    base_url: str = DEFAULT_BASE_URL

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        return check_endpoint_url(url, "base_url").rstrip("/")


class _DeployListItem(BaseModel):
    deploy: Deploy
    cursor: str | None = None


_DEPLOY_LIST = TypeAdapter(list[_DeployListItem])
_DEPLOY = TypeAdapter(Deploy)
_SERVICE = TypeAdapter(PlatformService)


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until calls are allowed again: ``Retry-After``, else ``Ratelimit-Reset``.

    ``headers`` must look names up case-insensitively (aiohttp's do). A reset
    above 1e9 is an epoch time (an older Render doc says so), else seconds.
    """
    retry = (headers.get("Retry-After") or "").strip()
    if retry.isdigit():
        return float(retry)
    reset = (headers.get("Ratelimit-Reset") or "").strip()
    try:
        number = float(reset)
    except ValueError:
        return None
    if number != number or number < 0:  # NaN, negative: unusable
        return None
    return max(0.0, number - now) if number > 1e9 else number


def _clock_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


def _excerpt(body: bytes) -> str:
    """The ``message`` of a Render error body, one line, at most 200 characters."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = document.get("message") if isinstance(document, dict) else None
    if not isinstance(message, str):
        return ""
    text = " ".join(message.split())
    return text[:200] + ("…" if len(text) > 200 else "")


def _describe(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return error.os_error.strerror or "cannot connect"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "connection closed before an answer"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


@register
class RenderPlatform(Platform):
    """A client of the Render API for one API key.

    ``clock`` (monotonic seconds), ``wall_clock`` (epoch seconds) and
    ``jitter`` (``random.uniform``-like) are injected so tests can drive the
    rate-limit wait without sleeping.
    """

    type: ClassVar[str] = "render"
    display_name: ClassVar[str] = "Render"
    config_model: ClassVar[builtins.type[PlatformConfig]] = RenderConfig

    def __init__(self, name: str, config: PlatformConfig, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 jitter: Callable[[float, float], float] = random.uniform) -> None:
        if not isinstance(config, RenderConfig):
            config = RenderConfig.model_validate(config.model_dump())
        super().__init__(name, config)
        self._base_url = config.base_url
        self._clock = clock
        self._wall_clock = wall_clock
        self._jitter = jitter
        self._session: aiohttp.ClientSession | None = None
        self._blocked_until = 0.0  # clock() time before which no call is made
        self._blocked_until_wall = 0.0

    # -- the endpoints --------------------------------------------------------

    async def latest_deploys(self, service_id: str, limit: int = 5) -> list[Deploy]:
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        body = await self._call("GET", self._path(service_id, "deploys"), service_id,
                                params=[("limit", str(limit))])
        items = self._parse(_DEPLOY_LIST, body, service_id)
        return [item.deploy for item in items]

    async def deploy(self, service_id: str, deploy_id: str) -> Deploy:
        path = self._path(service_id, "deploys", deploy_id)
        body = await self._call("GET", path, service_id, deploy_id=deploy_id)
        return self._parse(_DEPLOY, body, service_id)

    async def restart(self, service_id: str) -> None:
        # 200 with an empty body: nothing to parse.
        await self._call("POST", self._path(service_id, "restart"), service_id)

    async def trigger_deploy(self, service_id: str, *, clear_cache: bool = False) -> Deploy | None:
        payload = {"clearCache": "clear" if clear_cache else "do_not_clear"}
        status, body = await self._call_with_status(
            "POST", self._path(service_id, "deploys"), service_id, json_body=payload)
        if status == 202 or not body.strip():
            # Accepted and queued without a body: the newest queued deploy is this one.
            queued = await self._call("GET", self._path(service_id, "deploys"), service_id,
                                      params=[("status", "queued"), ("limit", "1")])
            items = self._parse(_DEPLOY_LIST, queued, service_id)
            return items[0].deploy if items else None
        return self._parse(_DEPLOY, body, service_id)

    async def rollback(self, service_id: str, deploy_id: str) -> Deploy:
        body = await self._call("POST", self._path(service_id, "rollback"), service_id,
                                json_body={"deployId": deploy_id}, deploy_id=deploy_id)
        return self._parse(_DEPLOY, body, service_id)

    async def service(self, service_id: str) -> PlatformService:
        body = await self._call("GET", self._path(service_id), service_id)
        return self._parse(_SERVICE, body, service_id)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # -- plumbing -------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": "Tocsin/0.1"},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _path(self, service_id: str, *parts: str) -> str:
        # Ids go into the path quoted whole: an id can never reach another endpoint.
        return "/" + "/".join(["services", *(quote(part, safe="") for part in
                                             (service_id, *parts))])

    async def _call(self, method: str, path: str, service_id: str, *,
                    params: Sequence[tuple[str, str]] | None = None,
                    json_body: Any = None, deploy_id: str | None = None) -> bytes:
        _, body = await self._call_with_status(method, path, service_id, params=params,
                                               json_body=json_body, deploy_id=deploy_id)
        return body

    async def _call_with_status(self, method: str, path: str, service_id: str, *,
                                params: Sequence[tuple[str, str]] | None = None,
                                json_body: Any = None,
                                deploy_id: str | None = None) -> tuple[int, bytes]:
        key = self.config.api_key.get_secret_value()
        if not key:
            raise PlatformError(f"no API key for platform {self.name!r}: set its api_key "
                                "(e.g. api_key: ${RENDER_API_KEY})", permanent=True)
        wait = self._blocked_until - self._clock()
        if wait > 0:
            raise PlatformError(
                f"Render rate limited the API key; not calling it again for service "
                f"{service_id} before {_clock_time(self._blocked_until_wall)} "
                f"(retry at {_clock_time(self._blocked_until_wall)})",
                permanent=False, retry_after=wait)
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        data: bytes | None = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(json_body, separators=(",", ":")).encode()
        timeout = self.config.timeout
        try:
            async with asyncio.timeout(timeout):
                async with self.session.request(
                    method, self._base_url + path, params=list(params or ()), data=data,
                    headers=headers, allow_redirects=False,
                    # A POST without a body (restart) says nothing about a body it lacks.
                    skip_auto_headers=() if data is not None else ("Content-Type",),
                ) as response:
                    body = await response.content.read(RESPONSE_CAP + 1)
                    status, answer = response.status, response.headers
        except TimeoutError:
            raise PlatformError(f"Render did not answer within {timeout:g} s "
                                f"(service {service_id})", permanent=False) from None
        except (aiohttp.ClientError, OSError) as error:
            raise PlatformError(f"cannot reach Render (service {service_id}): "
                                f"{_describe(error)}", permanent=False) from None
        self._note_rate_limit(status, answer)
        if 200 <= status < 300:
            if len(body) > RESPONSE_CAP:
                raise PlatformError(f"Render sent a malformed answer for service {service_id}: "
                                    f"over {RESPONSE_CAP // 1024 // 1024} MiB", permanent=False)
            return status, body
        raise self._refusal(status, body, service_id, deploy_id)

    def _note_rate_limit(self, status: int, headers: Mapping[str, str]) -> None:
        """After a 429, or when the window is spent, hold every call until it resets."""
        remaining = (headers.get("Ratelimit-Remaining") or "").strip()
        if status != 429 and remaining != "0":
            return
        wait = rate_limit_wait(headers, self._wall_clock())
        if wait is None:
            if status != 429:
                return
            wait = DEFAULT_RATE_LIMIT_WAIT
        wait += self._jitter(0.0, min(MAX_JITTER, 0.5 + wait * 0.1))
        self._blocked_until = self._clock() + wait
        self._blocked_until_wall = self._wall_clock() + wait

    def _refusal(self, status: int, body: bytes, service_id: str,
                 deploy_id: str | None) -> PlatformError:
        if status in (401, 403):
            return PlatformError(
                f"Render refused the API key for service {service_id} (HTTP {status}): check "
                f"platforms.{self.name}.api_key (e.g. RENDER_API_KEY)", permanent=True)
        if status == 404:
            what = f"unknown service id {service_id}"
            if deploy_id is not None:
                what = f"unknown service id {service_id} or deploy id {deploy_id}"
            return PlatformError(f"Render: {what} (HTTP 404, platform {self.name!r})",
                                 permanent=True)
        if status == 429:
            retry = max(0.0, self._blocked_until - self._clock())
            return PlatformError(
                f"Render rate limited the API key (HTTP 429, service {service_id}); "
                f"retry at {_clock_time(self._blocked_until_wall)}",
                permanent=False, retry_after=retry)
        detail = _excerpt(body)
        suffix = f": {detail}" if detail else ""
        if status == 408 or status >= 500:
            return PlatformError(f"Render answered HTTP {status} for service {service_id}"
                                 f"{suffix}", permanent=False)
        return PlatformError(f"Render refused the request for service {service_id}: "
                             f"HTTP {status}{suffix}", permanent=True)

    def _parse(self, adapter: TypeAdapter[T], body: bytes, service_id: str) -> T:
        try:
            return adapter.validate_json(body)
        except ValidationError as error:
            first = error.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the body"
            reason = ("not JSON" if first["type"] == "json_invalid"
                      else f"{where}: {first['msg']}")
            raise PlatformError(f"Render sent a malformed answer for service {service_id} "
                                f"({reason})", permanent=False) from None
