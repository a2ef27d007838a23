"""Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) inside the test's event loop::

    async with serve_asgi(app) as url:     # e.g. "http://127.0.0.1:43817"
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator
from typing import Any, Literal

import uvicorn

LOOPBACK = "127.0.0.1"


class _TestServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # leave pytest's signal handlers alone


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any, lifespan: Literal["auto", "on", "off"] = "auto"
) -> AsyncIterator[str]:
    """Run ``app`` until the block ends; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen(128)
    sock.setblocking(False)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    server = _TestServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
