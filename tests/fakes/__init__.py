"""Local stand-ins for the HTTP APIs channels talk to, each following the published contract.

Every fake is an aiohttp server on 127.0.0.1 (a free port) that records what
it received, refuses (as the real API would, with its status and error body)
what the real API would refuse, and can be told to answer a given status for
the next requests or to hang::

    async with SendGridFake.running(api_key="SG.test") as sendgrid:
        sendgrid.answer_next(429, headers={"Retry-After": "7"})
        sendgrid.hang_next()
        ... sendgrid.url, sendgrid.received, sendgrid.accepted
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

MAX_REQUEST = 64 * 1024 * 1024  # what the fake server reads at most; each API has its own limit


@dataclass(frozen=True)
class Received:
    """One request as a fake saw it, and the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Scripted:
    status: int | None  # None: hang until the server stops
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """Raised by a fake's validation: the answer the real API gives to a bad request."""

    def __init__(self, status: int, body: str, content_type: str = "text/plain") -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.content_type = content_type


class FakeAPI:
    """Base of the fakes: serving, recording, scripted answers; subclasses validate."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self._script: deque[_Scripted] = deque()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def accepted(self) -> list[Received]:
        """The requests the fake accepted (answered 2xx)."""
        return [request for request in self.received if 200 <= request.status < 300]

    def answer_next(self, status: int, times: int = 1, *, body: str = "",
                    headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``body``, ``headers``)."""
        for _ in range(times):
            self._script.append(_Scripted(status, body, dict(headers or {})))

    def hang_next(self, times: int = 1) -> None:
        """Read the next ``times`` requests and never answer them."""
        for _ in range(times):
            self._script.append(_Scripted(None, ""))

    def route(self, app: web.Application) -> None:
        """Add the API's routes; the default takes every POST."""
        app.router.add_post("/{tail:.*}", self._handle)

    def validate(self, request: web.Request, body: bytes) -> web.Response:
        """The real API's answer to a request the script does not decide."""
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        scripted = self._script.popleft() if self._script else None
        if scripted is not None and scripted.status is None:
            self.received.append(Received(request.method, request.path, headers, body, 0))
            await self._stopping.wait()
            raise web.HTTPServiceUnavailable()
        if scripted is not None:
            response = web.Response(status=scripted.status, text=scripted.body,
                                    headers=scripted.headers)
        else:
            try:
                response = self.validate(request, body)
            except Refused as refused:
                response = web.Response(status=refused.status, text=refused.body,
                                        content_type=refused.content_type)
        self.received.append(Received(request.method, request.path, headers, body,
                                      response.status))
        return response

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, *args: Any, **kwargs: Any) -> AsyncIterator[Self]:
        """Start the fake on 127.0.0.1 and stop it (and release hanging requests) on exit."""
        fake = cls(*args, **kwargs)
        app = web.Application(client_max_size=MAX_REQUEST)
        fake.route(app)
        fake._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await fake._runner.setup()
        site = web.TCPSite(fake._runner, "127.0.0.1", 0)
        await site.start()
        port = fake._runner.addresses[0][1]
        fake.url = f"http://127.0.0.1:{port}"
        try:
            yield fake
        finally:
            fake._stopping.set()
            await fake._runner.cleanup()


def utf16_length(text: str) -> int:
    """Length as Slack and most JSON APIs count it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2
