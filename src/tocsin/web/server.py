"""Serve the web app inside Tocsin's own event loop (uvicorn, without its signal handling)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from tocsin.web.api import create_app

if TYPE_CHECKING:
    from tocsin.runtime import Runtime


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to the Runtime, which stops the scheduler and flushes the store.
        yield


class WebServer:
    """Binds its socket first (a port in use is a clear error), then serves."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self.app = create_app(runtime)
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        sock.listen(1024)
        sock.setblocking(False)
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False,
            lifespan="off", server_header=False,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="tocsin-web")
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        return str(host), int(port)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
