"""Real local targets for probe tests: a well-behaved HTTP service and hostile ones.

Every target is an async context manager that listens on 127.0.0.1 (a free
port), yields an object with a ``url``, and stops everything it started on exit::

    async with http_target() as target:        # aiohttp app, records each request
        ...  target.url, target.requests, target.connections
    async with hanging_target() as target:     # accepts, reads, never answers
        ...

Hostile targets are raw ``asyncio`` servers: ``closed_port``, ``hanging_target``,
``dripping_target``, ``endless_body_target``, ``endless_headers_target``,
``garbage_target``, ``truncated_body_target`` and ``scripted_target`` (any
bytes); ``tls_target`` serves the well-behaved app over TLS with a certificate
no client trusts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import trustme
from aiohttp import web

LOOPBACK = "127.0.0.1"

JSON_DOCUMENT = {
    "status": "ok",
    "version": 3,
    "healthy": True,
    "checks": {"db": "ok", "cache": "degraded"},
    "items": [{"name": "first"}, {"name": "second"}],
}


# -- the well-behaved target ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the target saw it."""

    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes
    peer_port: int


@dataclass
class HTTPTarget:
    """A running aiohttp target: its base URL and what it has received."""

    url: str
    requests: list[RecordedRequest] = field(default_factory=list)

    @property
    def connections(self) -> int:
        """Distinct client connections seen (by the client's ephemeral port)."""
        return len({request.peer_port for request in self.requests})


def _target_app(target: HTTPTarget) -> web.Application:
    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        target.requests.append(
            RecordedRequest(
                method=request.method,
                path_qs=request.path_qs,
                headers=dict(request.headers),
                body=await request.read(),
                peer_port=peer[1] if peer else 0,
            )
        )
        return await handler(request)

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="all ok")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status page")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        return web.Response(text="slow ok")

    async def document(_: web.Request) -> web.Response:
        return web.json_response(JSON_DOCUMENT)

    async def text(request: web.Request) -> web.Response:
        return web.Response(text=request.query.get("text", ""))

    async def sized(request: web.Request) -> web.Response:
        size = int(request.match_info["size"])
        return web.Response(body=b"x" * (size - 3) + b"END")

    async def with_headers(_: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"X-Env": "production", "X-Secret": "hunter2"})

    async def redirect(request: web.Request) -> web.Response:
        hops = int(request.match_info["hops"])
        if hops == 0:
            return web.Response(text="arrived")
        raise web.HTTPFound(f"/redirect/{hops - 1}")

    async def loop(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    app = web.Application(middlewares=[record])
    app.router.add_route("*", "/", ok)
    app.router.add_route("*", "/health", ok)
    app.router.add_route("*", "/echo", ok)
    app.router.add_route("*", "/api/v1/health", ok)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/slow/{ms}", slow)
    app.router.add_get("/json", document)
    app.router.add_get("/text", text)
    app.router.add_get("/sized/{size}", sized)
    app.router.add_get("/headers", with_headers)
    app.router.add_get("/redirect/{hops}", redirect)
    app.router.add_get("/loop", loop)
    return app


@contextlib.asynccontextmanager
async def http_target(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[HTTPTarget]:
    """A well-behaved HTTP service; see ``_target_app`` for its routes."""
    target = HTTPTarget(url="")
    runner = web.AppRunner(_target_app(target), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    target.url = f"{'https' if ssl_context else 'http'}://{LOOPBACK}:{port}"
    try:
        yield target
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def tls_target() -> AsyncIterator[HTTPTarget]:
    """The well-behaved service over TLS, with a certificate from an untrusted CA."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(LOOPBACK).configure_cert(context)
    async with http_target(ssl_context=context) as target:
        yield target


# -- hostile targets -----------------------------------------------------------------------------


@dataclass
class RawTarget:
    """A raw TCP target: its URL, how many connections it took, how much it sent."""

    url: str
    connections: int = 0
    bytes_sent: int = 0


Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter, RawTarget], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_target(behaviour: Behaviour) -> AsyncIterator[RawTarget]:
    """Serve every connection with ``behaviour``; cancel them all on exit."""
    target = RawTarget(url="")
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        target.connections += 1
        try:
            await behaviour(reader, writer, target)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up, or the target is stopping
        finally:
            writer.transport.abort()
            tasks.discard(task)

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    target.url = f"http://{LOOPBACK}:{server.sockets[0].getsockname()[1]}"
    try:
        yield target
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def _read_request_head(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        await reader.readuntil(b"\r\n\r\n")


@contextlib.asynccontextmanager
async def closed_port() -> AsyncIterator[RawTarget]:
    """A port nothing listens on: connecting is refused."""
    with socket.socket() as probe_socket:
        probe_socket.bind((LOOPBACK, 0))
        port = probe_socket.getsockname()[1]
    yield RawTarget(url=f"http://{LOOPBACK}:{port}")


@contextlib.asynccontextmanager
async def hanging_target() -> AsyncIterator[RawTarget]:
    """Accepts and reads the request, then never answers."""

    async def hang(reader: asyncio.StreamReader, _: asyncio.StreamWriter, __: RawTarget) -> None:
        await _read_request_head(reader)
        await asyncio.Event().wait()

    async with raw_target(hang) as target:
        yield target


@contextlib.asynccontextmanager
async def dripping_target(interval: float = 0.1) -> AsyncIterator[RawTarget]:
    """Answers a valid response one byte every ``interval`` seconds."""
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   target: RawTarget) -> None:
        await _read_request_head(reader)
        for index in range(len(response)):
            writer.write(response[index : index + 1])
            await writer.drain()
            target.bytes_sent += 1
            await asyncio.sleep(interval)

    async with raw_target(drip) as target:
        yield target


@contextlib.asynccontextmanager
async def endless_body_target(
    size: int = 1024**3, content_length: bool = True
) -> AsyncIterator[RawTarget]:
    """Answers 200 with a ``size``-byte body (1 GiB by default), streamed as it is read.

    ``bytes_sent`` counts what the client accepted (plus socket buffers); without
    ``content_length`` the body is delimited by closing the connection.
    """
    chunk = b"\0" * 65536
    length = f"Content-Length: {size}\r\n" if content_length else "Connection: close\r\n"
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{length}\r\n".encode()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     target: RawTarget) -> None:
        await _read_request_head(reader)
        writer.transport.set_write_buffer_limits(high=65536)
        writer.write(head)
        remaining = size
        while remaining > 0:
            part = chunk[: min(remaining, len(chunk))]
            writer.write(part)
            await writer.drain()
            target.bytes_sent += len(part)
            remaining -= len(part)

    async with raw_target(stream) as target:
        yield target


@contextlib.asynccontextmanager
async def scripted_target(answer: bytes) -> AsyncIterator[RawTarget]:
    """Answers every request with exactly ``answer``, then closes."""

    async def recite(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     target: RawTarget) -> None:
        await _read_request_head(reader)
        writer.write(answer)
        await writer.drain()
        target.bytes_sent += len(answer)

    async with raw_target(recite) as target:
        yield target


def garbage_target(
    payload: bytes = b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe not http at all\r\n\r\n",
) -> contextlib.AbstractAsyncContextManager[RawTarget]:
    """Answers bytes that are not HTTP, then closes."""
    return scripted_target(payload)


@contextlib.asynccontextmanager
async def endless_headers_target() -> AsyncIterator[RawTarget]:
    """Answers a status line, then header lines for ever."""

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    target: RawTarget) -> None:
        await _read_request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            writer.write(b"X-More: yes\r\n" * 64)
            await writer.drain()
            target.bytes_sent += 13 * 64

    async with raw_target(flood) as target:
        yield target


@contextlib.asynccontextmanager
async def truncated_body_target(
    promised: int = 1000, sent: bytes = b"0123456789"
) -> AsyncIterator[RawTarget]:
    """Promises ``promised`` bytes of body, sends fewer, and closes."""

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  target: RawTarget) -> None:
        await _read_request_head(reader)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {promised}\r\n\r\n".encode() + sent)
        await writer.drain()
        target.bytes_sent += len(sent)

    async with raw_target(cut) as target:
        yield target

