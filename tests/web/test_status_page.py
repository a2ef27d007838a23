"""The public status page: services, 90 daily bars from rollups, incidents, maintenance, cache."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Target
from tests.web.running import HOSTILE, Site, running_tocsin
from tocsin.probes import CheckResult, CheckStatus
from tocsin.web.credentials import hash_password
from tocsin.web.status import DAY, DailyUptimes, DayBar, StatusBoard

# A 1×1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGA"
                       "WjR9awAAAABJRU5ErkJggg==")
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;q"
YAML_HOSTILE = HOSTILE.replace("'", "''")

STATUS_CONFIG = f"""\
status_page:
  title: 'Acme {YAML_HOSTILE}'
  logo: logo.png
  services: [edge, backend]
maintenance:
  - name: 'db upgrade {YAML_HOSTILE}'
    matchers: [service=backend]
    cron: '* * * * *'
    duration: 1h
    comment: 'expect {YAML_HOSTILE} blips'
  - name: never-for-edge-long-ago
    matchers: [service=nowhere]
    cron: '0 3 * * *'
    duration: 1h
"""


@pytest.fixture
async def site(tmp_path: Path, target: Target,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.setenv("TOCSIN_ADMIN_PASSWORD_HASH", hash_password("pw"))
    monkeypatch.delenv("TOCSIN_API_TOKEN", raising=False)
    (tmp_path / "logo.png").write_bytes(PNG)
    async with running_tocsin(tmp_path, target, STATUS_CONFIG) as site:
        await site.until(lambda: site.runtime.engine is not None and any(
            a.state.value == "firing" for a in site.runtime.engine.alerts.values()))
        await site.until(lambda: bool(site.runtime.require_store().load_incidents()))
        yield site


def bars(html: str, service: str) -> list[str]:
    article = html.split(f'data-service="{service}"', 1)[1].split("</article>", 1)[0]
    return re.findall(r'<li class="bar (\w+)"', article)


async def test_the_status_page_is_public_and_shows_the_configured_services_in_order(
        site: Site) -> None:
    status, html, response = await site.get("/status")
    assert status == 200  # a password is set, and no session is needed
    assert re.findall(r'<article class="service state-(\w+)" data-service="([^"]+)"', html) == [
        ("down", "edge"), ("up", "backend")]
    assert "svc&lt;script" not in html  # not among the services shown
    assert f"<title>Acme {ESCAPED}</title>" in html
    assert "Some systems are degraded" in html
    assert response.headers["Cache-Control"] == "public, max-age=30"
    assert 'name="viewport"' in html and "/static/status.css" in html
    assert "style=" not in html and "<script" not in html


async def test_ninety_daily_bars_come_from_the_daily_rollups(site: Site) -> None:
    store = site.runtime.require_store()
    today = int(time.time() // DAY)
    results = []
    for back, failing in ((3, 0), (2, 1), (1, 10)):  # 100 runs each, some failing
        start = (today - back) * DAY + 3600
        results += [CheckResult("backend-health",
                                CheckStatus.FAILING if i < failing else CheckStatus.OK,
                                start + i * 60, latency_ms=50.0) for i in range(100)]
    store.write_results(results)
    await site.until(lambda: store.summary(["backend-health"], today * DAY,
                                           time.time())["backend-health"].count > 0)
    board = site_board(site)
    # A closed day is read once and kept; these were written after the start read them.
    board.daily, board._view = DailyUptimes(), None
    _, html, _ = await site.get("/status")
    levels = bars(html, "backend")
    assert len(levels) == 90
    assert levels[-4:-1] == ["ok", "minor", "down"]  # 100 %, 99 %, 90 %
    assert set(levels[:-4]) == {"none"}
    assert levels[-1] == "ok"  # today: the live check, up
    assert 'title="' + time.strftime("%Y-%m-%d", time.gmtime((today - 1) * DAY)) + ': 90.00%"' \
        in html


def site_board(site: Site) -> StatusBoard:
    assert site.runtime.web is not None and site.runtime.web._server is not None
    app: Any = site.runtime.web._server.config.app
    board: StatusBoard = app.state.status_board
    return board


async def test_the_page_is_built_once_per_cache_period(site: Site) -> None:
    _, first, _ = await site.get("/status")
    built = site_board(site)._built_at
    _, second, _ = await site.get("/status")
    assert second == first and site_board(site)._built_at == built


async def test_incidents_show_their_timeline(site: Site) -> None:
    _, html, _ = await site.get("/status")
    incident = html.split('<article class="incident open">', 1)[1].split("</article>", 1)[0]
    assert f"{ESCAPED} is down" in incident
    assert "edge" in incident and "critical" in incident and "ongoing" in incident
    assert "<strong>Opened</strong>" in incident and "<strong>Identified</strong>" in incident
    status, body = await site.json("GET", "/api/v1/status")
    assert status == 200
    [item] = body["incidents"]
    assert item["service"] == "edge" and item["closed_at"] is None
    assert [entry["label"] for entry in item["timeline"]][:2] == ["Opened", "Identified"]


async def test_maintenance_windows_are_announced_for_shown_services(site: Site) -> None:
    _, html, _ = await site.get("/status")
    maintenance = html.split('<ul class="maintenance">', 1)[1].split("</ul>", 1)[0]
    assert f"db upgrade {ESCAPED}" in maintenance and "in progress" in maintenance
    assert f"expect {ESCAPED} blips" in maintenance
    assert "never-for-edge" not in html  # it matches no shown service


async def test_the_logo_is_served_and_only_as_a_raster_image(site: Site) -> None:
    _, html, _ = await site.get("/status")
    assert '<img class="logo" src="/status/logo"' in html
    async with site.http.get(site.url + "/status/logo") as response:
        assert response.status == 200 and response.content_type == "image/png"
        assert await response.read() == PNG


async def test_a_private_status_page_needs_a_session(tmp_path: Path, target: Target,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_ADMIN_PASSWORD_HASH", hash_password("pw"))
    async with running_tocsin(tmp_path, target, "status_page: {public: false}\n") as site:
        status, _, response = await site.get("/status")
        assert status == 303 and response.headers["Location"] == "/login?next=%2Fstatus"
        status, _, _ = await site.get("/badge/backend/status.svg")
        assert status == 303


def test_a_day_bar_is_coloured_by_its_uptime() -> None:
    assert [DayBar(0, u).level for u in (None, 1.0, 0.9995, 0.995, 0.97, 0.5)] == [
        "none", "ok", "ok", "minor", "major", "down"]
