"""The adapters served for real by uvicorn, asked over HTTP by an aiohttp client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

from asgi_server import serve_asgi
from tocsin.health import HealthRegistry, Unhealthy
from tocsin.testing import FakeClock


async def fine() -> None:
    return None


async def cache_down() -> None:
    raise Unhealthy("timed out after 2 s")


def registry(*, cache_ok: bool = True, database_ok: bool = True) -> HealthRegistry:
    health = HealthRegistry(version="2.0.1")
    health.add("database", fine if database_ok else cache_down)
    health.add("cache", fine if cache_ok else cache_down, critical=False)
    return health


def fastapi_app(health: HealthRegistry) -> FastAPI:
    app = FastAPI()
    app.include_router(health.router("/health"))
    return app


def starlette_app(health: HealthRegistry) -> Starlette:
    return Starlette(routes=[health.starlette_route("/health")])


def plain_app(health: HealthRegistry) -> Any:
    return health.asgi_app("/health")


FRAMEWORKS = {"fastapi": fastapi_app, "starlette": starlette_app, "asgi": plain_app}


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch(client: aiohttp.ClientSession, url: str,
                method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    async with client.request(method, url) as response:
        return response.status, dict(response.headers), await response.read()


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize(
    ("cache_ok", "database_ok", "code", "status"),
    [(True, True, 200, "healthy"), (False, True, 200, "degraded"),
     (True, False, 503, "unhealthy")],
)
async def test_served_answer(client: aiohttp.ClientSession, framework: str, cache_ok: bool,
                             database_ok: bool, code: int, status: str) -> None:
    app = FRAMEWORKS[framework](registry(cache_ok=cache_ok, database_ok=database_ok))
    async with serve_asgi(app) as url:
        got, headers, body = await fetch(client, f"{url}/health")

    assert got == code
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    document = json.loads(body)
    assert document["status"] == status
    assert document["version"] == "2.0.1"
    assert set(document["checks"]) == {"database", "cache"}
    if not cache_ok:
        assert document["checks"]["cache"]["message"] == "timed out after 2 s"


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
async def test_head_answers_the_status_without_a_body(client: aiohttp.ClientSession,
                                                      framework: str) -> None:
    async with serve_asgi(FRAMEWORKS[framework](registry(database_ok=False))) as url:
        got, _, body = await fetch(client, f"{url}/health", method="HEAD")

    assert got == 503
    assert body == b""


async def test_burst_of_requests_runs_the_checks_once(client: aiohttp.ClientSession) -> None:
    runs = 0

    async def counted() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.1)

    clock = FakeClock()
    health = HealthRegistry(cache_ttl=2.0, clock=clock.now)
    health.add("database", counted)
    async with serve_asgi(fastapi_app(health)) as url:
        answers = await asyncio.gather(*(fetch(client, f"{url}/health") for _ in range(20)))
        assert runs == 1
        assert {json.loads(body)["timestamp"] for _, _, body in answers} == {
            json.loads(answers[0][2])["timestamp"]}
        clock.advance(1.0)
        await fetch(client, f"{url}/health")
        assert runs == 1
        clock.advance(1.5)
        await fetch(client, f"{url}/health")

    assert runs == 2


async def test_plain_asgi_app_refuses_other_paths_and_methods(
    client: aiohttp.ClientSession,
) -> None:
    async with serve_asgi(plain_app(registry())) as url:
        elsewhere, _, _ = await fetch(client, f"{url}/other")
        posted, headers, _ = await fetch(client, f"{url}/health", method="POST")

    assert elsewhere == 404
    assert posted == 405
    assert headers["Allow"] == "GET, HEAD"


async def test_plain_asgi_app_without_a_path_answers_everywhere(
    client: aiohttp.ClientSession,
) -> None:
    async with serve_asgi(registry().asgi_app(), lifespan="on") as url:
        got, _, body = await fetch(client, f"{url}/anything")

    assert got == 200
    assert json.loads(body)["status"] == "healthy"


def test_importing_tocsin_health_imports_no_framework_or_driver() -> None:
    heavy = ["fastapi", "starlette", "sqlalchemy", "aiohttp", "asyncpg", "psutil", "pydantic"]
    code = (
        "import sys, tocsin.health\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout

    assert output.strip() == ""
