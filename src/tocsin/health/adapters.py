"""Serve a :class:`~tocsin.health.core.HealthRegistry` from FastAPI, Starlette or bare ASGI.

Every adapter answers GET and HEAD with the report as JSON, status 200
(healthy or degraded) or 503 (unhealthy), and ``Cache-Control: no-store`` so
that no proxy answers a probe with an old verdict. FastAPI and Starlette are
imported only by the adapter that needs them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tocsin.health.core import HealthRegistry, HealthReport

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MEDIA_TYPE = "application/json"
NO_STORE = {"Cache-Control": "no-store"}


def _response(report: HealthReport) -> Response:
    from starlette.responses import Response

    return Response(report.as_json(), status_code=report.http_status, media_type=MEDIA_TYPE,
                    headers=NO_STORE)


def fastapi_router(registry: HealthRegistry, path: str = "/health",
                   **route_options: Any) -> APIRouter:
    """An ``APIRouter`` with one route; ``route_options`` go to ``add_api_route``
    (``include_in_schema``, ``tags``, ``summary`` …)."""
    from fastapi import APIRouter
    from starlette.responses import Response

    async def health() -> Response:
        return _response(await registry.run())

    router = APIRouter()
    route_options.setdefault("summary", "Health of this service and its dependencies")
    # response_model=None: the endpoint returns a ready Response, nothing to validate
    router.add_api_route(path, health, methods=["GET", "HEAD"], response_class=Response,
                         response_model=None, **route_options)
    return router


def starlette_route(registry: HealthRegistry, path: str = "/health") -> Route:
    """A Starlette ``Route`` (Starlette adds HEAD to GET)."""
    from starlette.routing import Route

    async def health(_: Request) -> Response:
        return _response(await registry.run())

    return Route(path, health, methods=["GET"], name="health")


def asgi_app(registry: HealthRegistry, path: str | None = None) -> ASGIApp:
    """A framework-free ASGI app: the report at ``path`` (every path when None), 404 elsewhere,
    405 for methods other than GET and HEAD; it answers the lifespan protocol too."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # a websocket gets its connection closed by the server
        if path is not None and scope["path"] != path:
            await _plain(send, 404, b"not found")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, b"method not allowed", [(b"allow", b"GET, HEAD")])
            return
        report = await registry.run()
        body = report.as_json()
        await send({
            "type": "http.response.start",
            "status": report.http_status,
            "headers": [(b"content-type", MEDIA_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"cache-control", b"no-store")],
        })
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})

    return app


async def _plain(send: Send, status: int, body: bytes,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
