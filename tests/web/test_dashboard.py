"""The dashboard pages, their JSON, and the SSE feed, over a real Runtime on a loopback port."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.conftest import Target
from tests.web.running import HOSTILE, Site, running_tocsin
from tocsin.probes import CheckResult, CheckStatus
from tocsin.web.credentials import hash_password
from tocsin.web.events import QUEUE_SIZE, StateFeed

PAGES = ["/", "/alerts", "/operations", "/checks/backend-health", "/status"]


@pytest.fixture
async def site(tmp_path: Path, target: Target,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    for name in ("TOCSIN_API_TOKEN", "TOCSIN_ADMIN_PASSWORD_HASH"):
        monkeypatch.delenv(name, raising=False)
    async with running_tocsin(tmp_path, target) as site:
        await site.until(lambda: site.runtime.latest.get("edge-down") is not None
                         and site.runtime.latest.get("backend-health") is not None)
        yield site


def feed_of(site: Site) -> StateFeed:
    assert site.runtime.web is not None and site.runtime.web._server is not None
    app: Any = site.runtime.web._server.config.app
    feed: StateFeed = app.state.state_feed
    return feed


def rows(html: str) -> dict[str, str]:
    """Check name (as the page escaped it) → its state, from the overview table, in order."""
    return {name: state for state, name in
            re.findall(r'<tr class="state-(\w+)" data-check="([^"]*)"', html)}


async def test_overview_shows_every_check_with_its_state_latency_and_uptime(site: Site) -> None:
    status, html, _ = await site.get("/")
    assert status == 200
    states = rows(html)
    assert states["backend-health"] == "up" and states["edge-down"] == "down"
    assert list(states)[:2] != ["backend-health"]  # down checks come first
    assert 'data-service="backend"' in html and 'data-service="edge"' in html
    assert re.search(r"\d+(\.\d)? ms", html)  # a latency
    assert "/static/overview.js" in html and 'name="csrf-token"' in html


async def test_overview_filters_by_service_state_and_search(site: Site) -> None:
    _, html, _ = await site.get("/?service=backend")
    assert list(rows(html)) == ["backend-health"]
    _, html, _ = await site.get("/?state=down")
    assert "backend-health" not in rows(html) and "edge-down" in rows(html)
    _, html, _ = await site.get("/?q=EDGE")
    assert list(rows(html)) == ["edge-down"]
    status, _, _ = await site.get("/?state=exploded")
    assert status == 422


async def test_a_page_past_the_end_is_empty_and_points_to_the_last(site: Site) -> None:
    status, html, _ = await site.get("/?page=99")
    assert status == 200
    assert rows(html) == {}
    assert "There is no page 99" in html and "page=1" in html
    status, body = await site.json("GET", "/api/v1/overview?page=99")
    assert status == 200 and body["items"] == [] and body["pages"] == 1 and body["total"] == 3
    status, _, _ = await site.get("/?page=0")
    assert status == 422
    status, html, _ = await site.get("/operations?page=50")
    assert status == 200 and "There is no page 50 of the log" in html
    assert 'href="?page=1"' in html


async def test_every_page_escapes_names_messages_and_comments(site: Site) -> None:
    await site.until(lambda: site.runtime.latest.get(HOSTILE) is not None)
    status, created = await site.json("POST", "/api/v1/silences", json={
        "matchers": ["service=backend"], "duration": "1h", "created_by": HOSTILE,
        "comment": f"comment {HOSTILE}"})
    assert status == 201, created
    async with site.http.get(site.url + "/api/v1/alerts?state=firing") as response:
        firing = (await response.json())["items"]
    assert any(HOSTILE in alert["summary"] for alert in firing)
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;q"
    pages = [*PAGES, "/checks/" + quote(HOSTILE, safe="")]
    for path in pages:
        status, html, _ = await site.get(path)
        assert status == 200, path
        assert "<script>alert" not in html, path
        assert escaped in html or path in ("/checks/backend-health", "/operations"), path
    _, html, _ = await site.get("/alerts")
    assert f"comment {escaped}" in html  # the silence comment
    assert f"{escaped} is down" in html  # the alert's summary


async def test_pages_hold_no_inline_script_or_style(site: Site) -> None:
    for path in PAGES:
        _, html, response = await site.get(path)
        assert "style=" not in html and "<style" not in html, path
        for tag in re.findall(r"<script[^>]*>", html):
            assert 'src="/static/' in tag, (path, tag)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for asset in ("/static/app.js", "/static/app.css", "/static/vendor/uplot.min.js"):
        status, _, _ = await site.get(asset)
        assert status == 200, asset


async def test_with_a_password_pages_need_a_session_but_the_status_page_does_not(
        tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_ADMIN_PASSWORD_HASH", hash_password("correct horse"))
    monkeypatch.delenv("TOCSIN_API_TOKEN", raising=False)
    async with running_tocsin(tmp_path, target) as site:
        for path in ("/", "/alerts", "/operations", "/checks/backend-health"):
            status, _, response = await site.get(path)
            assert status == 303 and response.headers["Location"].startswith("/login?next="), path
        status, _ = await site.json("GET", "/api/v1/overview")
        assert status == 401
        status, _, _ = await site.get("/status")
        assert status == 200

        async with site.http.post(site.url + "/login", data={
                "password": "correct horse", "next": "/alerts"}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/alerts"
        status, html, _ = await site.get("/alerts")
        assert status == 200 and "Sign out" in html
        token = re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert token is not None
        status, _ = await site.json("POST", "/api/v1/silences", json={
            "matchers": ["service=backend"], "duration": "1h", "created_by": "a"})
        assert status == 403  # the session alone is not enough: the CSRF token is
        status, _ = await site.json("POST", "/api/v1/silences", json={
            "matchers": ["service=backend"], "duration": "1h", "created_by": "a"},
            headers={"X-CSRF-Token": token.group(1)})
        assert status == 201


async def test_history_and_rollups_of_a_check(site: Site) -> None:
    store = site.runtime.require_store()
    now = time.time()
    store.write_results([CheckResult("backend-health", CheckStatus.OK, now - 7200 - i * 60,
                                     latency_ms=100.0 + i) for i in range(30)])
    status, body = await site.json("GET", "/api/v1/checks/backend-health/rollups?range=day")
    assert status == 200 and body["step"] == 300
    assert sum(item["count"] for item in body["items"]) >= 30
    assert all(item["uptime"] == 1.0 for item in body["items"])
    status, body = await site.json("GET", "/api/v1/checks/backend-health/rollups?range=month")
    assert status == 200 and body["step"] == 3600
    status, _ = await site.json("GET", "/api/v1/checks/backend-health/rollups?range=year")
    assert status == 422
    status, body = await site.json("GET", "/api/v1/checks/backend-health/history?limit=5")
    assert status == 200 and len(body["items"]) == 5
    assert body["items"][0]["started_at"] >= body["items"][-1]["started_at"]
    status, _ = await site.json("GET", "/api/v1/checks/nope/history")
    assert status == 404
    status, _, _ = await site.get("/checks/nope")
    assert status == 404
    _, html, _ = await site.get("/checks/backend-health")
    assert 'id="chart"' in html and 'class="strip"' in html


async def test_alerts_page_lists_the_firing_alert_with_ack_and_silence_buttons(
        site: Site) -> None:
    await site.until(lambda: site.runtime.engine is not None and any(
        a.state.value == "firing" for a in site.runtime.engine.alerts.values()))
    status, html, _ = await site.get("/alerts")
    assert status == 200
    assert 'data-fingerprint="edge-down:down"' in html
    assert 'data-action="ack"' in html and 'data-matcher="fingerprint=edge-down:down"' in html
    assert "/static/alerts.js" in html


async def test_operations_page_shows_channel_health(site: Site) -> None:
    status, html, _ = await site.get("/operations")
    assert status == 200
    assert "Channel health" in html and "<td>rec</td>" in html and "Remediation log" in html


# -- Server-Sent Events -------------------------------------------------------------------

async def read_event(response: aiohttp.ClientResponse, kind: str,
                     within: float) -> dict[str, Any]:
    """The next ``kind`` event's data from an open SSE response."""
    deadline = time.monotonic() + within
    event = None
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {kind} event within {within}s"
        line = (await asyncio.wait_for(response.content.readline(), remaining)).decode()
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: ") and event == kind:
            data: dict[str, Any] = json.loads(line[6:])
            return data


async def test_a_check_that_goes_down_is_pushed_within_two_seconds(
        site: Site, target: Target) -> None:
    async with site.http.get(site.url + "/api/v1/events") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        await read_event(response, "hello", 2)
        target.health_status = 503
        flipped = time.monotonic()
        while True:
            data = await read_event(response, "state", 3)
            change = next((c for c in data["changes"] if c["check"] == "backend-health"), None)
            if change is not None:
                break
        assert time.monotonic() - flipped < 2.0
        assert change["state"] == "down" and change["service"] == "backend"
        assert change["status"] == "failing"


async def test_a_reconnecting_page_gets_the_changes_it_missed(site: Site,
                                                              target: Target) -> None:
    before = time.time()
    feed_of(site).attach()
    target.health_status = 503
    await site.until(lambda: (r := site.runtime.latest.get("backend-health")) is not None
                     and r.status is CheckStatus.FAILING)
    async with site.http.get(site.url + f"/api/v1/events?since={before}") as response:
        hello = await read_event(response, "hello", 2)
    changed = [c["check"] for c in hello["changes"]]
    assert "backend-health" in changed and "edge-down" not in changed  # down from the start


async def test_clients_that_disconnect_leave_nothing_behind(site: Site) -> None:
    feed = feed_of(site)

    async def connect_and_drop() -> None:
        async with site.http.get(site.url + "/api/v1/events") as response:
            await read_event(response, "hello", 2)

    for _ in range(20):  # warm up: caches, connection pool
        await connect_and_drop()
    await site.until(lambda: not feed.clients)
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    tracemalloc.start()
    try:
        first = tracemalloc.take_snapshot()
        for _ in range(1000):
            await connect_and_drop()
        await site.until(lambda: not feed.clients, within=5)
        await asyncio.sleep(0.2)
        gc.collect()
        growth = sum(stat.size_diff for stat in
                     tracemalloc.take_snapshot().compare_to(first, "filename"))
    finally:
        tracemalloc.stop()
    assert not feed.clients
    assert len(asyncio.all_tasks()) <= tasks_before + 2
    assert growth < 512 * 1024, f"memory grew by {growth} bytes over 1,000 connections"


async def test_a_client_that_falls_behind_is_dropped_and_the_others_keep_going(
        site: Site) -> None:
    feed = feed_of(site)
    slow, fast = feed.stream(None), feed.stream(None)
    for stream in (slow, fast):
        assert (await anext(stream)).startswith("retry:")
        assert (await anext(stream)).startswith("event: hello")
    for n in range(QUEUE_SIZE + 1):  # nobody reads `slow`; `fast` reads as it goes
        feed.broadcast(f"event: state\ndata: {n}\n\n")
        assert await anext(fast) == f"event: state\ndata: {n}\n\n"
    assert feed.dropped == 1 and len(feed.clients) == 1
    with pytest.raises(StopAsyncIteration):
        await anext(slow)  # the dropped stream ends: its browser reconnects with `since`
    feed.broadcast("event: state\ndata: last\n\n")
    assert await anext(fast) == "event: state\ndata: last\n\n"
    await fast.aclose()
    assert not feed.clients
