"""A fake webhook receiver: an aiohttp server on 127.0.0.1 that records, scripts and validates.

:class:`ScriptedServer` is the base of the HTTP fakes here: it records every
request, and a test can make the next N requests answer any status (with
``Retry-After``) or hang until the server stops. :class:`AlertmanagerReceiver`
accepts what an Alertmanager webhook receiver accepts (``version: "4"``) and
refuses with 400 what does not follow that format, and with 401 a missing or
wrong ``X-Tocsin-Signature`` when it knows the secret::

    async with AlertmanagerReceiver(secret="…") as receiver:
        receiver.fail_next(2, status=503, retry_after="7")
        ...  receiver.url, receiver.requests, receiver.accepted
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Script:
    remaining: int
    status: int | None  # None: hang
    retry_after: str | None
    body: str


class ScriptedServer:
    """Records requests; answers as scripted (`fail_next`, `hang_next`), else with `answer()`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.url = ""
        self._scripts: list[_Script] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def fail_next(self, times: int, status: int, retry_after: str | None = None,
                  body: str = '{"error": "scripted failure"}') -> None:
        """The next ``times`` requests answer ``status`` (with ``Retry-After`` if given)."""
        self._scripts.append(_Script(times, status, retry_after, body))

    def hang_next(self, times: int = 1_000_000) -> None:
        """The next ``times`` requests get no answer until the server stops."""
        self._scripts.append(_Script(times, None, None, ""))

    async def answer(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """The answer to a request no script claimed; subclasses validate here."""
        return web.json_response({"status": "ok"})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path_qs, dict(request.headers),
                                      body))
        if self._scripts:
            script = self._scripts[0]
            script.remaining -= 1
            if script.remaining <= 0:
                self._scripts.pop(0)
            if script.status is None:
                await self._release.wait()
                return web.Response(status=503, text="released at shutdown")
            headers = {"Retry-After": script.retry_after} if script.retry_after else {}
            return web.Response(status=script.status, text=script.body, headers=headers,
                                content_type="application/json")
        return await self.answer(request, body)

    async def __aenter__(self) -> ScriptedServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


def _rfc3339(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return value.endswith("Z") or value[-6] in "+-"


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items())


def alertmanager_errors(document: Any) -> list[str]:
    """What makes ``document`` not an Alertmanager ``version: "4"`` webhook body."""
    if not isinstance(document, dict):
        return ["the body is not a JSON object"]
    errors = []
    if document.get("version") != "4":
        errors.append("version must be \"4\"")
    for key in ("groupKey", "receiver", "externalURL"):
        if not isinstance(document.get(key), str):
            errors.append(f"{key} must be a string")
    if document.get("status") not in ("firing", "resolved"):
        errors.append("status must be firing or resolved")
    if not isinstance(document.get("truncatedAlerts"), int):
        errors.append("truncatedAlerts must be an integer")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        if not _string_map(document.get(key)):
            errors.append(f"{key} must map strings to strings")
    alerts = document.get("alerts")
    if not isinstance(alerts, list):
        return [*errors, "alerts must be a list"]
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            errors.append(f"{where} is not an object")
            continue
        if alert.get("status") not in ("firing", "resolved"):
            errors.append(f"{where}.status must be firing or resolved")
        if not _string_map(alert.get("labels")) or "alertname" not in alert["labels"]:
            errors.append(f"{where}.labels must map strings to strings and hold alertname")
        if not _string_map(alert.get("annotations")):
            errors.append(f"{where}.annotations must map strings to strings")
        for key in ("startsAt", "endsAt"):
            if not _rfc3339(alert.get(key)):
                errors.append(f"{where}.{key} must be an RFC 3339 time")
        for key in ("generatorURL", "fingerprint"):
            if not isinstance(alert.get(key), str):
                errors.append(f"{where}.{key} must be a string")
    return errors


class AlertmanagerReceiver(ScriptedServer):
    """A receiver of Alertmanager webhooks; ``accepted`` holds the bodies it took."""

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.accepted: list[dict[str, Any]] = []

    async def __aenter__(self) -> AlertmanagerReceiver:
        await super().__aenter__()
        return self

    async def answer(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if request.method != "POST":
            return web.json_response({"error": "method not allowed"}, status=405)
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret.encode(), body,
                                            hashlib.sha256).hexdigest()
            given = request.headers.get("X-Tocsin-Signature", "")
            if not hmac.compare_digest(expected, given):
                return web.json_response({"error": "bad signature"}, status=401)
        if request.content_type != "application/json":
            return web.json_response({"error": "expected application/json"}, status=415)
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return web.json_response({"error": "the body is not UTF-8 JSON"}, status=400)
        errors = alertmanager_errors(document)
        if errors:
            return web.json_response({"error": "invalid webhook", "errors": errors}, status=400)
        self.accepted.append(document)
        return web.json_response({"status": "ok"})
