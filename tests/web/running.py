"""A real Tocsin (Runtime, store, web server on a loopback port) for the page tests.

``running_tocsin`` writes a config around a local target (``/health`` can be
flipped to failing) and yields a :class:`Site` with an HTTP session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import Target
from tocsin.runtime import Runtime

HOSTILE = "<script>alert(\"x\")</script>'q"  # text that must come out escaped everywhere


@dataclass
class Site:
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.url + path, allow_redirects=False, **kwargs) as response:
            return response.status, await response.text(), response

    async def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, **kwargs) as response:
            return response.status, await response.json()

    async def until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, "the condition did not hold in time"
            await asyncio.sleep(0.02)


def config_text(tmp_path: Path, target: Target, extra: str = "") -> str:
    """Three services: ``backend`` (flippable /health), ``edge`` (down), a hostile name."""
    hostile = HOSTILE.replace("'", "''")  # inside single quotes in YAML
    return f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1s, timeout: 1s}}
scheduler: {{jitter: false}}
channels: {{rec: {{type: recording}}}}
services:
  backend:
    url: {target.url}
    checks:
      - {{type: http, name: backend-health, path: /health}}
  edge:
    url: {target.url}
    checks:
      - type: http
        name: edge-down
        path: /down
        alerts: [{{when: down, severity: P1, confirm: 0, summary: '{hostile} is down'}}]
  'svc{hostile}':
    url: {target.url}
    checks:
      - {{type: http, name: '{hostile}', path: /down}}
{extra}"""


@contextlib.asynccontextmanager
async def running_tocsin(tmp_path: Path, target: Target, extra: str = "",
                         cookies: bool = True) -> AsyncIterator[Site]:
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_text(tmp_path, target, extra))
    runtime = Runtime(config)
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(runtime.ready.wait(), 10)
        assert runtime.web_address is not None
        host, port = runtime.web_address
        jar = aiohttp.CookieJar(unsafe=True) if cookies else aiohttp.DummyCookieJar()
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            yield Site(runtime, f"http://{host}:{port}", http)
    finally:
        runtime.request_stop()
        await asyncio.wait_for(task, 15)
