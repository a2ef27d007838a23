"""SVG badges: status, uptime over 24h/7d/30d and response time, escaped and cacheable."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import Target
from tests.web.running import HOSTILE, Site, running_tocsin
from tocsin.probes import CheckResult, CheckStatus
from tocsin.web.badges import render_badge, text_width


@pytest.fixture
async def site(tmp_path: Path, target: Target,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.delenv("TOCSIN_ADMIN_PASSWORD_HASH", raising=False)
    async with running_tocsin(tmp_path, target, cookies=False) as site:
        await site.until(lambda: all(site.runtime.latest.get(spec.name) is not None
                                     for spec in site.runtime.checks))
        yield site


async def badge(site: Site, path: str) -> tuple[int, str, str]:
    """Status, the badge's visible texts joined by " | ", and its Cache-Control."""
    async with site.http.get(site.url + path) as response:
        body = await response.text()
        if response.status != 200:
            return response.status, body, ""
        assert response.content_type == "image/svg+xml"
        root = ET.fromstring(body)  # well-formed XML, whatever the name held
        texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
        return response.status, " | ".join(texts), response.headers["Cache-Control"]


async def test_status_badges_of_a_check_and_of_a_service(site: Site) -> None:
    assert await badge(site, "/badge/backend-health/status.svg") == (
        200, "backend-health | up", "public, max-age=60")
    assert (await badge(site, "/badge/edge/status.svg"))[1] == "edge | down"
    status, _, _ = await badge(site, "/badge/nope/status.svg")
    assert status == 404


async def test_uptime_badges_read_the_rollups_of_their_window(site: Site) -> None:
    store = site.runtime.require_store()
    now = time.time()
    # 3 days ago: 4 failures in 100; the last 24 hours: the live (passing) results only.
    store.write_results([CheckResult("backend-health",
                                     CheckStatus.FAILING if i < 4 else CheckStatus.OK,
                                     now - 3 * 86400 + i * 60, latency_ms=20.0)
                         for i in range(100)])
    await site.until(lambda: store.summary(["backend-health"], now - 3600, time.time() + 3600)
                     ["backend-health"].count > 0)
    _, day, _ = await badge(site, "/badge/backend-health/uptime-24h.svg")
    _, week, _ = await badge(site, "/badge/backend-health/uptime-7d.svg")
    _, month, _ = await badge(site, "/badge/backend/uptime-30d.svg")
    assert day == "uptime 24h | 100%"
    match = re.fullmatch(r"uptime 7d \| (\d+\.\d\d)%", week)
    assert match is not None and 95.0 < float(match.group(1)) < 97.0
    assert month.startswith("uptime 30d | 9")
    status, _, _ = await badge(site, "/badge/backend-health/uptime-1y.svg")
    assert status == 404


async def test_response_time_badge_shows_the_latest_latency(site: Site) -> None:
    status, text, _ = await badge(site, "/badge/backend-health/response-time.svg")
    assert status == 200 and re.fullmatch(r"response time \| \d+(\.\d)? ms", text), text


async def test_a_hostile_name_comes_out_escaped(site: Site) -> None:
    async with site.http.get(site.url + f"/badge/{quote(HOSTILE, safe='')}/status.svg") as r:
        body = await r.text()
    assert r.status == 200
    assert "<script>" not in body and "&lt;script&gt;" in body
    root = ET.fromstring(body)
    assert next(t.text for t in root.iter("{http://www.w3.org/2000/svg}text")) == HOSTILE


async def test_only_what_the_status_page_shows_has_badges(tmp_path: Path, target: Target,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOCSIN_ADMIN_PASSWORD_HASH", raising=False)
    async with running_tocsin(tmp_path, target, "status_page: {services: [backend]}\n",
                              cookies=False) as site:
        assert (await badge(site, "/badge/backend/status.svg"))[0] == 200
        assert (await badge(site, "/badge/edge-down/status.svg"))[0] == 404
        assert (await badge(site, "/badge/edge/uptime-24h.svg"))[0] == 404


def test_a_badge_is_as_wide_as_its_texts() -> None:
    svg = render_badge("uptime 24h", "99.95%", "green")
    width = int(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert width == text_width("uptime 24h") + text_width("99.95%") + 20
    assert text_width("mmmm") > text_width("iiii")
