"""A fake Render API (``/v1``), strict about the contract in ``shared/RENDER_API.md``.

It refuses what the real API refuses: a missing or wrong ``Authorization:
Bearer`` (401), an ``Accept`` that excludes JSON (406), an unknown service or
deploy (404), a bad ``limit``, ``status`` or ``clearCache`` (400), a body on a
GET or on restart (400), a POST body that is not a JSON object sent as
``application/json`` (400), an unknown query parameter or body key (400),
a method a path does not take (405). Every answer carries ``Ratelimit-Limit``,
``Ratelimit-Remaining`` and ``Ratelimit-Reset``.

State the tests change: ``services`` (each with its deploys, newest first),
what a restart brings back (:meth:`FakeRender.on_restart`; without it, or after
:meth:`FakeRender.break_restarts`, a restart is accepted and nothing recovers),
``new_deploy_status`` (201 with the deploy, or 202 without a body), scripted
answers (:meth:`FakeRender.fail_next`, :meth:`FakeRender.malformed_next`,
:meth:`FakeRender.hang_next`), and the rate-limit headers. ``requests`` logs
every request: method, path, query (as pairs), headers, body::

    async with FakeRender(api_key="rnd_test") as render:
        render.add_service("srv-backend")
        render.add_deploy("srv-backend", "build_failed", commit_message="Break it")
        ...  render.url (the base URL, ending in /v1), render.requests
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from aiohttp import web

STATUSES = ("created", "queued", "build_in_progress", "update_in_progress",
            "pre_deploy_in_progress", "live", "deactivated", "build_failed", "update_failed",
            "pre_deploy_failed", "canceled")
FINISHED = ("live", "deactivated", "build_failed", "update_failed", "pre_deploy_failed",
            "canceled")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RenderRequest:
    """One request as the fake saw it."""

    method: str
    path: str  # without the /v1 prefix
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeService:
    """A service and its deploys, newest first (each a deploy object as Render sends it)."""

    id: str
    name: str
    type: str = "web_service"
    suspended: str = "not_suspended"
    deploys: list[dict[str, Any]] = field(default_factory=list)
    restarts: int = 0
    # Called ``restart_delay`` seconds after each accepted restart (sync or async).
    on_restart: Callable[[], Awaitable[None] | None] | None = None
    restart_delay: float = 0.5

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type,
                "suspended": self.suspended, "suspenders": [], "autoDeploy": "yes",
                "dashboardUrl": f"https://dashboard.render.com/web/{self.id}",
                "ownerId": "tea-fake", "slug": self.name}


@dataclass
class _Scripted:
    remaining: int
    status: int | None  # None: hang until the server stops
    body: str
    headers: dict[str, str]


class FakeRender:
    """The Render endpoints Tocsin uses, on 127.0.0.1 at a free port."""

    def __init__(self, api_key: str = "rnd_test_key_123") -> None:
        self.api_key = api_key
        self.services: dict[str, FakeService] = {}
        self.requests: list[RenderRequest] = []
        self.new_deploy_status = 201  # or 202: queued, no body
        self.ratelimit_limit = 400
        self.ratelimit_remaining = 400
        self.ratelimit_reset = "60"  # seconds, as text (an epoch in some tests)
        self.url = ""
        self._ids = itertools.count(1)
        self._scripts: list[_Scripted] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- state ----------------------------------------------------------------

    def add_service(self, service_id: str, name: str | None = None) -> FakeService:
        service = self.services[service_id] = FakeService(service_id, name or service_id)
        return service

    def add_deploy(self, service_id: str, status: str, *, commit_id: str | None = "abc1234def",
                   commit_message: str = "Ship it", trigger: str = "new_commit",
                   created: datetime | None = None, finished: datetime | None = None,
                   deploy_id: str | None = None) -> dict[str, Any]:
        """Add a deploy as the newest of the service; finished ones get a finish time."""
        created = created or datetime.now(UTC) - timedelta(minutes=5)
        if finished is None and status in FINISHED:
            finished = created + timedelta(minutes=3)
        deploy = {
            "id": deploy_id or f"dep-{next(self._ids):04d}",
            "commit": ({"id": commit_id, "message": commit_message,
                        "createdAt": rfc3339(created - timedelta(minutes=1))}
                       if commit_id else None),
            "status": status,
            "trigger": trigger,
            "createdAt": rfc3339(created),
            "updatedAt": rfc3339(finished or created),
            "startedAt": rfc3339(created + timedelta(seconds=5)),
            "finishedAt": rfc3339(finished) if finished else None,
        }
        if commit_id is None:
            deploy["image"] = {"ref": "docker.io/acme/app:1", "sha": "sha256:feed",
                               "registryCredential": None}
        self.services[service_id].deploys.insert(0, deploy)
        return deploy

    def on_restart(self, service_id: str, callback: Callable[[], Awaitable[None] | None], *,
                   delay: float = 0.5) -> None:
        """After each accepted restart of the service, call ``callback`` ``delay`` s later.

        The callback brings the service back, e.g. sets a local target healthy.
        """
        service = self.services[service_id]
        service.on_restart, service.restart_delay = callback, delay

    def break_restarts(self, service_id: str) -> None:
        """Restarts of the service are accepted (200) and bring nothing back."""
        self.services[service_id].on_restart = None

    def _restarted(self, service: FakeService) -> None:
        service.restarts += 1
        callback, delay = service.on_restart, service.restart_delay
        if callback is None:
            return

        async def recover() -> None:
            await asyncio.sleep(delay)
            result = callback()
            if result is not None:
                await result

        task = asyncio.get_running_loop().create_task(recover())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def set_status(self, service_id: str, deploy_id: str, status: str) -> None:
        for deploy in self.services[service_id].deploys:
            if deploy["id"] == deploy_id:
                deploy["status"] = status
                if status in FINISHED:
                    deploy["finishedAt"] = rfc3339(datetime.now(UTC))
                return
        raise KeyError(deploy_id)

    # -- scripts --------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, body: str | None = None,
                  headers: dict[str, str] | None = None) -> None:
        """The next ``times`` requests answer ``status`` with ``headers`` (after auth passes)."""
        if body is None:
            body = json.dumps({"message": "rate limit exceeded" if status == 429
                               else f"scripted {status}"})
        self._scripts.append(_Scripted(times, status, body, headers or {}))

    def malformed_next(self, body: str = '{"deploy": [', *, times: int = 1) -> None:
        """The next ``times`` requests answer 200 with ``body``, not what the contract says."""
        self._scripts.append(_Scripted(times, 200, body, {}))

    def hang_next(self, times: int = 1_000_000) -> None:
        """The next ``times`` requests get no answer until the server stops."""
        self._scripts.append(_Scripted(times, None, "", {}))

    def paths(self) -> list[str]:
        """``METHOD /path?query`` of every request, for exact assertions."""
        out = []
        for request in self.requests:
            query = "&".join(f"{k}={v}" for k, v in request.query)
            out.append(f"{request.method} {request.path}" + (f"?{query}" if query else ""))
        return out

    # -- serving --------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Ratelimit-Limit": str(self.ratelimit_limit),
                "Ratelimit-Remaining": str(max(0, self.ratelimit_remaining)),
                "Ratelimit-Reset": self.ratelimit_reset}

    def _json(self, data: Any, status: int = 200, **extra: str) -> web.Response:
        return web.Response(status=status, text=json.dumps(data),
                            content_type="application/json", headers={**self._headers(), **extra})

    def _error(self, status: int, message: str) -> web.Response:
        return self._json({"id": f"err-{status}", "message": message}, status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path.removeprefix("/v1")
        self.requests.append(RenderRequest(request.method, path, list(request.query.items()),
                                           dict(request.headers), body))
        self.ratelimit_remaining -= 1
        if not request.path.startswith("/v1/"):
            return self._error(404, "not found")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "unauthorized")
        accept = request.headers.get("Accept", "*/*")
        if not any(kind.split(";")[0].strip() in ("application/json", "application/*", "*/*")
                   for kind in accept.split(",")):
            return self._error(406, "not acceptable")
        if self._scripts:
            script = self._scripts[0]
            script.remaining -= 1
            if script.remaining <= 0:
                self._scripts.pop(0)
            if script.status is None:
                await self._release.wait()
                return web.Response(status=503, text="released at shutdown")
            headers = {name: value for name, value in self._headers().items()
                       if name.lower() not in {key.lower() for key in script.headers}}
            return web.Response(status=script.status, text=script.body,
                                content_type="application/json",
                                headers={**headers, **script.headers})
        return self._route(request.method, path, request, body)

    def _route(self, method: str, path: str, request: web.Request,
               body: bytes) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "services":
            return self._error(404, "not found")
        service = self.services.get(parts[1])
        if service is None:
            return self._error(404, f"not found: {parts[1]}")
        if method == "GET" and body:
            return self._error(400, "a GET takes no body")
        rest = parts[2:]
        if rest == [] and method == "GET":
            return self._no_query(request) or self._json(service.as_json())
        if rest == ["deploys"] and method == "GET":
            return self._list_deploys(service, request)
        if rest == ["deploys"] and method == "POST":
            return self._new_deploy(service, request, body)
        if len(rest) == 2 and rest[0] == "deploys" and method == "GET":
            found = next((d for d in service.deploys if d["id"] == rest[1]), None)
            if found is None:
                return self._error(404, f"not found: {rest[1]}")
            return self._no_query(request) or self._json(found)
        if rest == ["restart"] and method == "POST":
            if body:
                return self._error(400, "restart takes no body")
            self._restarted(service)
            return web.Response(status=200, headers=self._headers())
        if rest == ["rollback"] and method == "POST":
            return self._rollback(service, request, body)
        if rest in ([], ["deploys"], ["restart"], ["rollback"]) or (
                len(rest) == 2 and rest[0] == "deploys"):
            return self._error(405, "method not allowed")
        return self._error(404, "not found")

    def _no_query(self, request: web.Request) -> web.Response | None:
        if request.query:
            return self._error(400, f"unknown query parameter {next(iter(request.query))!r}")
        return None

    def _list_deploys(self, service: FakeService, request: web.Request) -> web.Response:
        unknown = set(request.query) - {"limit", "cursor", "status", "createdBefore",
                                        "createdAfter", "updatedBefore", "updatedAfter",
                                        "finishedBefore", "finishedAfter"}
        if unknown:
            return self._error(400, f"unknown query parameter {sorted(unknown)[0]!r}")
        limits = request.query.getall("limit", ["20"])
        if len(limits) != 1 or not limits[0].isdigit() or not 1 <= int(limits[0]) <= 100:
            return self._error(400, "limit must be an integer between 1 and 100")
        statuses = request.query.getall("status", [])
        if any(status not in STATUSES for status in statuses):
            return self._error(400, "invalid status")
        deploys = [d for d in service.deploys if not statuses or d["status"] in statuses]
        cursor = request.query.get("cursor")
        if cursor is not None:
            ids = [d["id"] for d in deploys]
            if cursor not in ids:
                return self._error(400, "invalid cursor")
            deploys = deploys[ids.index(cursor) + 1:]
        page = deploys[:int(limits[0])]
        return self._json([{"deploy": d, "cursor": d["id"]} for d in page])

    def _json_body(self, request: web.Request, body: bytes) -> dict[str, Any] | web.Response:
        if request.content_type != "application/json":
            return self._error(400, "Content-Type must be application/json")
        try:
            document = json.loads(body)
        except ValueError:
            return self._error(400, "invalid JSON")
        if not isinstance(document, dict):
            return self._error(400, "the body must be a JSON object")
        return document

    def _new_deploy(self, service: FakeService, request: web.Request,
                    body: bytes) -> web.StreamResponse:
        if self._no_query(request) is not None:
            return self._error(400, "unknown query parameter")
        document = self._json_body(request, body)
        if isinstance(document, web.Response):
            return document
        if set(document) - {"clearCache", "commitId", "imageUrl"}:
            return self._error(400, "unknown key in body")
        if document.get("clearCache", "do_not_clear") not in ("clear", "do_not_clear"):
            return self._error(400, "clearCache must be clear or do_not_clear")
        if self.new_deploy_status == 202:
            self.add_deploy(service.id, "queued", trigger="api", finished=None)
            return web.Response(status=202, headers=self._headers())
        deploy = self.add_deploy(service.id, "created", trigger="api", finished=None)
        return self._json(deploy, 201)

    def _rollback(self, service: FakeService, request: web.Request,
                  body: bytes) -> web.StreamResponse:
        if self._no_query(request) is not None:
            return self._error(400, "unknown query parameter")
        document = self._json_body(request, body)
        if isinstance(document, web.Response):
            return document
        if set(document) != {"deployId"} or not isinstance(document["deployId"], str):
            return self._error(400, "the body must be {\"deployId\": \"dep-…\"}")
        target = next((d for d in service.deploys if d["id"] == document["deployId"]), None)
        if target is None:
            return self._error(404, f"not found: {document['deployId']}")
        # Render keeps the old build, so a rollback goes live at once and what was
        # live is deactivated.
        commit = target["commit"]
        for deploy in service.deploys:
            if deploy["status"] == "live":
                deploy["status"] = "deactivated"
        now = datetime.now(UTC)
        deploy = self.add_deploy(service.id, "live", trigger="rollback",
                                 created=now - timedelta(seconds=30), finished=now,
                                 commit_id=commit["id"] if commit else None,
                                 commit_message=commit["message"] if commit else "")
        return self._json(deploy, 201)

    async def __aenter__(self) -> FakeRender:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self._release.set()
        for task in list(self._background):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
