"""``action: webhook``: POST the alert as JSON to a URL that fixes things (a runbook
automation, a CI job trigger, an internal control plane).

The body::

    {"version": "1", "action": "webhook",
     "alert": {"fingerprint": "backend:http", "check": "backend-http",
               "service": "backend", "severity": "P1", "summary": "…",
               "message": "…", "value": 503.0, "labels": {...}},
     "platform": {"service_id": "srv-…"}}        (null when the service has none)

Answers, by status code alone: 2xx accepted (``detail`` is up to 2 000
characters of the answer); 408, 429 (``Retry-After`` honoured) and 5xx
transient; other 4xx (and 3xx: redirects are not followed) permanent;
connection errors transient. ``url`` (often holding a token) and the ``headers``
values are secrets: no message repeats them. One connection per attempt:
remediation is rare, and so nothing is left open between attempts.
"""

from __future__ import annotations

import builtins
import time
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import ConfigDict, Field, SecretStr, field_validator

from tocsin.channels.endpoints import TRANSPORT_HEADERS, check_endpoint_url, check_headers
from tocsin.channels.http import retry_after
from tocsin.remediation.base import (
    Action,
    ActionConfig,
    ActionOutcome,
    ActionRequest,
    RemediationError,
)
from tocsin.remediation.registry import register

RESPONSE_CAP = 64 * 1024  # bytes of an answer read
DETAIL_CAP = 2000  # characters of an answer kept in the outcome or a message


class WebhookActionConfig(ActionConfig):
    """``action: webhook``: ``url`` (from ``${ENV}``), optional ``headers`` (secret values)."""

    # The URL, header and env values are secrets: a refusal never repeats what was given.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    action: Literal["webhook"]
    url: SecretStr
    headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, url: SecretStr) -> SecretStr:
        check_endpoint_url(url.get_secret_value(), "url")  # its message never repeats the URL
        return url

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        check_headers(headers, TRANSPORT_HEADERS)
        return headers


def webhook_payload(action: str, request: ActionRequest) -> dict[str, Any]:
    """The JSON body describing ``request``'s alert."""
    platform = request.platform
    return {
        "version": "1",
        "action": action,
        "alert": {"fingerprint": request.fingerprint, "check": request.check,
                  "service": request.service, "severity": request.severity.value,
                  "summary": request.summary, "message": request.message,
                  "value": request.value, "labels": dict(request.labels)},
        "platform": {"service_id": platform.service_id} if platform is not None else None,
    }


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text[:DETAIL_CAP] + ("…" if len(text) > DETAIL_CAP else "")


@register
class WebhookAction(Action[WebhookActionConfig]):
    """POST the alert to ``url``; a 2xx answer is accepted."""

    name: ClassVar[str] = "webhook"
    config_model: ClassVar[builtins.type[ActionConfig]] = WebhookActionConfig

    async def attempt(self, request: ActionRequest) -> ActionOutcome:
        headers = {name: value.get_secret_value() for name, value in self.config.headers.items()}
        where = f"{self.name} for {request.who}"
        try:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": "Tocsin/0.1"},
                cookie_jar=aiohttp.DummyCookieJar(),
            ) as session, session.post(
                self.config.url.get_secret_value(), json=webhook_payload(self.name, request),
                headers=headers, allow_redirects=False,
            ) as response:
                body = await response.content.read(RESPONSE_CAP)
                status, answer = response.status, response.headers
        except (aiohttp.ClientError, OSError) as error:
            raise RemediationError(f"{where}: cannot reach the webhook: {_describe(error)}",
                                   permanent=False) from None
        excerpt = _excerpt(body)
        if 200 <= status < 300:
            return ActionOutcome(True, excerpt or f"HTTP {status}", {"status": status})
        message = f"{where}: the webhook answered HTTP {status}" + (
            f": {excerpt}" if excerpt else "")
        if status in (408, 429) or status >= 500:
            raise RemediationError(message, permanent=False,
                                   retry_after=retry_after(answer, time.time()))
        raise RemediationError(message, permanent=True)


def _describe(error: BaseException) -> str:
    # aiohttp's messages may hold the URL (a secret): name the failure, not the target.
    if isinstance(error, aiohttp.ClientConnectorError):
        return error.os_error.strerror or "cannot connect"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "connection closed before an answer"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__
