"""The JSON API and /health, served by a Runtime running in this test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Target
from tocsin.runtime import Runtime


@pytest.fixture
async def runtime(tmp_path: Path, target: Target) -> AsyncIterator[tuple[Runtime, str]]:
    checks = "\n".join(
        f"      - {{type: http, name: ok-{i}, path: /health}}" for i in range(5)
    )
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1s, timeout: 1s}}
scheduler: {{jitter: false}}
services:
  backend:
    url: {target.url}
    checks:
{checks}
      - {{type: http, name: down, path: /down}}
  frontend:
    url: {target.url}
    checks:
      - {{type: http, name: front, path: /health}}
""")
    runtime = Runtime(config)
    task = asyncio.create_task(runtime.run())
    await asyncio.wait_for(runtime.ready.wait(), 10)
    assert runtime.web_address is not None
    host, port = runtime.web_address
    await asyncio.sleep(0.3)  # the first runs (no jitter: all due at once)
    yield runtime, f"http://{host}:{port}"
    runtime.request_stop()
    await asyncio.wait_for(task, 10)


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_health_reports_tocsin_itself(runtime: tuple[Runtime, str]) -> None:
    _, url = runtime
    status, body = await _get(f"{url}/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["checks"] == 7
    assert body["scheduler"]["runs"] >= 7
    assert body["store"]["error"] is None


async def test_checks_list_every_check_with_its_latest_result(
        runtime: tuple[Runtime, str]) -> None:
    _, url = runtime
    _, body = await _get(f"{url}/api/v1/checks?limit=1000")
    assert body["total"] == 7
    by_name = {item["name"]: item for item in body["items"]}
    assert by_name["ok-0"]["latest"]["status"] == "ok"
    assert by_name["down"]["latest"]["status"] == "failing"
    assert by_name["down"]["latest"]["code"] == 503
    assert by_name["front"]["service"] == "frontend"


async def test_checks_filter_and_page(runtime: tuple[Runtime, str]) -> None:
    _, url = runtime
    _, body = await _get(f"{url}/api/v1/checks?service=backend&limit=2&offset=4")
    assert body["total"] == 6
    assert [item["name"] for item in body["items"]] == ["ok-4", "down"]
    _, body = await _get(f"{url}/api/v1/checks?status=failing")
    assert [item["name"] for item in body["items"]] == ["down"]
    status, _ = await _get(f"{url}/api/v1/checks?limit=0")
    assert status == 422


async def test_openapi_is_published(runtime: tuple[Runtime, str]) -> None:
    _, url = runtime
    status, body = await _get(f"{url}/api/openapi.json")
    assert status == 200
    assert "/api/v1/checks" in body["paths"]
