"""``POST /api/v1/metrics`` and ``GET /api/v1/metrics`` through the real web server of a Runtime."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tocsin.runtime import Runtime

TOKEN = "push-token-for-tests-0123456789"


@dataclass
class Server:
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def push(self, *points: dict[str, Any], token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return await self.call("POST", "/api/v1/metrics", json={"metrics": list(points)},
                               headers=headers)

    async def metric(self, check: str, condition: Callable[[dict[str, Any]], bool],
                     within: float = 10.0) -> dict[str, Any]:
        """The check's entry of GET /api/v1/metrics, once ``condition`` holds for it."""
        deadline = time.monotonic() + within
        while True:
            _, body = await self.call("GET", "/api/v1/metrics")
            item: dict[str, Any] = next(i for i in body["items"] if i["check"] == check)
            if condition(item):
                return item
            assert time.monotonic() < deadline, item
            await asyncio.sleep(0.05)


async def running(tmp_path: Path, web: str) -> AsyncIterator[Server]:
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {web}
defaults: {{interval: 1s, timeout: 1s}}
scheduler: {{jitter: false}}
services:
  shop:
    checks:
      - type: metric
        name: pro-signups
        push: true
        metric: signups
        match: {{plan: pro}}
        absent_after: 2s
        alerts: [{{when: absent, severity: P3}}]
      - {{type: metric, name: signups, push: true}}
""")
    runtime = Runtime(config)
    task = asyncio.create_task(runtime.run())
    await asyncio.wait_for(runtime.ready.wait(), 10)
    assert runtime.web_address is not None
    host, port = runtime.web_address
    async with aiohttp.ClientSession() as http:
        yield Server(runtime, f"http://{host}:{port}", http)
    runtime.request_stop()
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.setenv("TOCSIN_PUSH_TOKEN", TOKEN)
    async for started in running(tmp_path, '{port: 0, push_token: "${TOCSIN_PUSH_TOKEN}"}'):
        yield started


@pytest.fixture
async def tokenless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.delenv("TOCSIN_PUSH_TOKEN", raising=False)
    async for started in running(tmp_path, '{port: 0, push_token: "${TOCSIN_PUSH_TOKEN:-}"}'):
        yield started


async def test_pushed_points_reach_the_checks_they_match(server: Server) -> None:
    status, body = await server.push(
        {"name": "signups", "value": 12.5, "labels": {"plan": "pro", "region": "eu"}},
        {"name": "signups", "value": 3, "labels": {"plan": "free"},
         "timestamp": time.time() - 60},
        {"name": "orders", "value": 1},
    )

    assert status == 202
    assert body == {"accepted": 3, "matched": 2, "unmatched": [2],
                    "checks": ["pro-signups", "signups"], "errors": []}
    pro = await server.metric("pro-signups", lambda item: item["value"] == 12.5)
    assert pro["status"] == "ok" and pro["source"] == "push"
    assert pro["point"]["labels"] == {"plan": "pro", "region": "eu"}
    every = await server.metric("signups", lambda item: item["value"] is not None)
    assert every["value"] == 12.5  # the newer of the two points that match it


async def test_a_bad_or_missing_token_is_401_without_a_hint(server: Server) -> None:
    for token in ("wrong-token", TOKEN[:-1], "", None):
        status, body = await server.push({"name": "signups", "value": 1}, token=token)
        assert status == 401, token
        assert TOKEN not in str(body)
    status, _ = await server.call("POST", "/api/v1/metrics", headers={"Authorization": TOKEN},
                                  json={"metrics": []})
    assert status == 401  # the token without its scheme
    assert server.runtime.context.metrics.latest("signups") is None


async def test_without_a_configured_token_pushing_is_off(tokenless: Server) -> None:
    status, body = await tokenless.push({"name": "signups", "value": 1}, token="anything")

    assert status == 403
    assert body == {"detail": "pushing metrics is off: set web.push_token"}


async def test_a_point_that_is_not_a_number_is_refused_alone(server: Server) -> None:
    status, body = await server.push(
        {"name": "signups", "value": "12"},
        {"name": "signups", "value": None},
        {"name": "signups", "value": True},
        {"name": "signups"},
        {"name": "signups", "value": 7},
    )

    assert status == 202
    assert body["accepted"] == 1 and body["matched"] == 1
    assert body["errors"] == [
        {"index": 0, "error": "value is a string '12', not a number"},
        {"index": 1, "error": "value is null null, not a number"},
        {"index": 2, "error": "value is a boolean true, not a number"},
        {"index": 3, "error": "value is missing"},
    ]


async def test_timestamps_out_of_range_are_refused_per_point(server: Server) -> None:
    now = time.time()
    status, body = await server.push(
        {"name": "signups", "value": 1, "timestamp": now + 7200},
        {"name": "signups", "value": 2, "timestamp": now - 2 * 86400},
        {"name": "signups", "value": 3, "timestamp": "yesterday"},
        {"name": "signups", "value": 4, "timestamp": "2026-01-01T00:00:00"},
        {"name": "signups", "value": 5, "timestamp": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 30))},
    )

    assert status == 202 and body["accepted"] == 1
    assert [error["error"] for error in body["errors"]] == [
        "timestamp is more than 1h in the future",
        "timestamp is more than 1 day in the past",
        "timestamp must be epoch seconds or RFC 3339, e.g. 2026-11-27T16:00:00Z",
        "an RFC 3339 timestamp needs a time zone, e.g. Z or +01:00",
    ]
    latest = server.runtime.context.metrics.latest("signups")
    assert latest is not None and latest.point.value == 5.0
    assert latest.point.timestamp == pytest.approx(now - 30, abs=1.0)


async def test_an_oversized_push_is_413(server: Server) -> None:
    points = [{"name": "signups", "value": index} for index in range(1001)]
    status, body = await server.push(*points)
    assert status == 413 and "at most 1000 points" in body["detail"]

    padded = b'{"metrics": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, body = await server.call("POST", "/api/v1/metrics", data=io.BytesIO(padded),
                                     headers=headers)
    assert status == 413 and body["detail"] == "a push is at most 1048576 bytes"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        for start in range(0, len(padded), 65536):
            yield padded[start:start + 65536]

    status, body = await server.call("POST", "/api/v1/metrics", data=chunked(),
                                     headers=headers)
    assert status == 413 and body["detail"] == "a push is at most 1048576 bytes"

    status, body = await server.call(
        "POST", "/api/v1/metrics", data=b"not json",
        headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 400 and body["detail"] == "the body is not JSON"


async def test_a_pushed_metric_that_stops_coming_becomes_absent(server: Server) -> None:
    status, _ = await server.push({"name": "signups", "value": 5, "labels": {"plan": "pro"}})
    assert status == 202
    await server.metric("pro-signups", lambda item: item["value"] == 5)

    absent = await server.metric("pro-signups", lambda item: item["value"] is None)

    assert absent["status"] == "failing"
    assert absent["message"] == "no point of 'signups' for 2s (the last was 5)"
    _, alerts = await server.call("GET", "/api/v1/alerts?state=firing")
    assert [alert["fingerprint"] for alert in alerts["items"]] == ["pro-signups:absent"]


async def test_the_push_token_is_a_secret_of_the_config(server: Server) -> None:
    assert server.runtime.loaded is not None
    redactor = server.runtime.loaded.redactor
    assert redactor.redact(f"Authorization: Bearer {TOKEN}") == "Authorization: Bearer ***"
    assert TOKEN not in repr(server.runtime.loaded.config.web)
