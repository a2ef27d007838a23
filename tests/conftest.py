"""Fixtures shared by every test directory: a real local HTTP target on 127.0.0.1, and a
real PostgreSQL server (one per session, see :mod:`postgres`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from postgres import PostgresServer, PostgresUnavailable, running_postgres


@dataclass
class Target:
    """A local aiohttp server; ``status`` of ``/health`` can be changed by a test."""

    url: str
    health_status: int = 200
    hits: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    state = Target(url="")

    async def health(request: web.Request) -> web.Response:
        state.hits[request.path] = state.hits.get(request.path, 0) + 1
        status = state.health_status
        return web.json_response({"status": "ok" if status < 400 else "down"}, status=status)

    async def down(request: web.Request) -> web.Response:
        return web.json_response({"status": "down"}, status=503)

    app = web.Application()
    async def home(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>front end</title>",
                            content_type="text/html")

    app.router.add_get("/", home)
    app.router.add_get("/health", health)
    app.router.add_get("/down", down)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session; skips only when it is not installed.

    Tests own what they create in it: make tables in a schema or database of
    your own (or drop them) so that tests do not see each other's.
    """
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as missing:
        pytest.skip(str(missing))
