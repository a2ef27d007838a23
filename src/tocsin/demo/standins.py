"""Local stand-ins for ``tocsin demo``: a backend, a front end, the Render API, a mail catcher.

Each listens on 127.0.0.1 at a free port and talks to nothing else. They are
deliberately small and lenient: just enough of each real thing for the
product brief's example to run end to end on one machine.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tocsin.health import HealthRegistry, Unhealthy

HOST = "127.0.0.1"
Notice = Callable[[str], None]


def _quiet(_: str) -> None:
    """The default ``notice``: say nothing."""


class _Site:
    """An aiohttp app on 127.0.0.1 at a free port."""

    def __init__(self) -> None:
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, 0).start()
        self.url = f"http://{HOST}:{self._runner.addresses[0][1]}"
        return self.url

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Call ``action`` after ``delay`` seconds (cancelled when the site stops)."""

        async def run() -> None:
            await asyncio.sleep(delay)
            action()

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class DemoBackend(_Site):
    """The API: ``/health`` (a :class:`HealthRegistry`) and a few ``/api/v1/...`` routes.

    :meth:`break_` makes every answer a 503 until :meth:`restart` brings it
    back, ``restart_time`` seconds later (as a real process would take to boot).
    """

    ROUTES = ("/api/v1/auth/login", "/api/v1/applicants", "/api/v1/projects")

    def __init__(self, restart_time: float = 3.0, notice: Notice = _quiet) -> None:
        super().__init__()
        self.broken = False
        self.restarts = 0
        self.restart_time = restart_time
        self.notice = notice
        self.health = HealthRegistry(version="demo", cache_ttl=0)
        self.health.add("app", self._app_check)

    async def _app_check(self) -> None:
        if self.broken:
            raise Unhealthy("the worker pool crashed")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        for path in self.ROUTES:
            app.router.add_get(path, self._api)
        return app

    async def _health(self, _: web.Request) -> web.Response:
        report = await self.health.run()
        return web.Response(status=report.http_status, body=report.as_json(),
                            content_type="application/json")

    async def _api(self, request: web.Request) -> web.Response:
        if self.broken:
            return web.json_response({"error": "service unavailable"}, status=503)
        return web.json_response({"path": request.path, "items": []})

    def break_(self) -> None:
        self.broken = True

    def restart(self) -> None:
        """What the platform does on a restart: healthy again ``restart_time`` s later."""
        self.restarts += 1

        def up() -> None:
            self.broken = False
            self.notice(f"backend: restarted and healthy again (after {self.restart_time:g} s)")

        self.later(self.restart_time, up)


class DemoFrontend(_Site):
    """The front end: one page at ``/``."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        return app

    async def _index(self, _: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>Demo</title><h1>Demo front end</h1>",
                            content_type="text/html")


class DemoRender(_Site):
    """What the example calls of the Render API (``/v1``), with Bearer auth and rate headers.

    ``GET /services/{id}``, ``GET /services/{id}/deploys`` (one ``live`` deploy)
    and ``POST /services/{id}/restart``, which calls the service's restart hook.
    """

    def __init__(self, notice: Notice = _quiet) -> None:
        super().__init__()
        self.api_key = "rnd_demo_" + secrets.token_urlsafe(16)
        self.notice = notice
        self.services: dict[str, Callable[[], None] | None] = {}
        self.requests: list[str] = []
        self._remaining = 400
        self._deployed = datetime.now(UTC) - timedelta(hours=2)
        self._ids = itertools.count(1)

    def add_service(self, service_id: str, on_restart: Callable[[], None] | None = None) -> None:
        self.services[service_id] = on_restart

    async def start(self) -> str:
        return await super().start() + "/v1"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def _json(self, data: Any, status: int = 200) -> web.Response:
        headers = {"Ratelimit-Limit": "400", "Ratelimit-Remaining": str(max(self._remaining, 0)),
                   "Ratelimit-Reset": "60"}
        return web.Response(status=status, text=json.dumps(data),
                            content_type="application/json", headers=headers)

    def _error(self, status: int, message: str) -> web.Response:
        return self._json({"id": f"err-{status}", "message": message}, status)

    async def _handle(self, request: web.Request) -> web.Response:
        self._remaining -= 1
        path = request.path.removeprefix("/v1")
        self.requests.append(f"{request.method} {path}")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "unauthorized")
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "services" or parts[1] not in self.services:
            return self._error(404, "not found")
        service_id, rest = parts[1], parts[2:]
        if rest == [] and request.method == "GET":
            return self._json({"id": service_id, "name": service_id, "type": "web_service",
                               "suspended": "not_suspended", "suspenders": [],
                               "autoDeploy": "yes", "slug": service_id})
        if rest == ["deploys"] and request.method == "GET":
            return self._json([{"deploy": self._deploy(service_id), "cursor": "c1"}])
        if rest == ["restart"] and request.method == "POST":
            self.notice(f"render: POST /services/{service_id}/restart accepted")
            hook = self.services[service_id]
            if hook is not None:
                hook()
            return self._json({}, 200)
        return self._error(405 if rest in ([], ["deploys"], ["restart"]) else 404,
                           "not supported by the demo stand-in")

    def _deploy(self, service_id: str) -> dict[str, Any]:
        def stamp(moment: datetime) -> str:
            return moment.isoformat().replace("+00:00", "Z")

        created = self._deployed
        return {"id": f"dep-{service_id}-1",
                "commit": {"id": "d3m0c0ffee", "message": "Demo release",
                           "createdAt": stamp(created - timedelta(minutes=1))},
                "status": "live", "trigger": "new_commit", "createdAt": stamp(created),
                "updatedAt": stamp(created + timedelta(minutes=3)),
                "startedAt": stamp(created + timedelta(seconds=5)),
                "finishedAt": stamp(created + timedelta(minutes=3))}


class MailCatcher:
    """A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps mail.

    ``on_message`` is called with each message's decoded subject as it arrives.
    No TLS and no AUTH: it listens only on 127.0.0.1.
    """

    def __init__(self, on_message: Callable[[str], None] = _quiet) -> None:
        self.on_message = on_message
        self.subjects: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._session, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._sessions):
                task.cancel()
            await self._server.wait_closed()
            self._server = None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._sessions.discard(task)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await reply("220 tocsin-demo mail catcher")
        while line := await reader.readline():
            verb = line.decode("utf-8", "replace").strip().split(" ", 1)[0].upper()
            if verb == "EHLO":
                await reply("250-tocsin-demo\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                await reply("250 OK")
            elif verb == "DATA":
                await reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := await reader.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                self._received(b"".join(lines))
                await reply("250 OK: queued")
            elif verb == "QUIT":
                await reply("221 bye")
                return
            else:
                await reply("502 not implemented")

    def _received(self, content: bytes) -> None:
        message = email.message_from_bytes(content, policy=email.policy.default)
        subject = " ".join(str(message.get("Subject", "(no subject)")).split())  # unfolded
        self.subjects.append(subject)
        self.on_message(subject)
