"""The dashboard and status page in headless Chromium (Debian's), driven by Playwright.

Signs in through /login, watches a check go red live, acks an alert, creates a
silence, opens the status page on a desktop and a phone, and writes
screenshots to docs/screenshots/ (the latest run overwrites them).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from tests.conftest import Target
from tests.web.running import Site, running_tocsin
from tocsin.web.credentials import hash_password

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
async def site(tmp_path: Path, target: Target,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.setenv("TOCSIN_ADMIN_PASSWORD_HASH", hash_password(PASSWORD))
    monkeypatch.delenv("TOCSIN_API_TOKEN", raising=False)
    async with running_tocsin(tmp_path, target,
                              "status_page: {title: Acme status, services: [backend, edge]}\n"
                              "slos: [{name: backend uptime, service: backend, "
                              "indicator: availability, objective: 99.9%}]\n"
                              "reports: {sla: {title: Acme SLA}}\n") as site:
        await site.until(lambda: site.runtime.engine is not None and any(
            a.state.value == "firing" for a in site.runtime.engine.alerts.values()))
        yield site


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        await browser.close()


def watch(page: Page) -> list[str]:
    """Problems the page reports: script errors and Content-Security-Policy refusals."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "/api/v1/slos" not in message.text \
                and "404" not in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


async def sign_in(page: Page, site: Site, path: str = "/") -> None:
    await page.goto(site.url + path)
    assert "/login" in page.url
    await page.fill('input[name="password"]', PASSWORD)
    async with page.expect_response(lambda r: r.request.method == "POST"
                                    and r.url.startswith(site.url + "/login")) as posted:
        await page.click('button[type="submit"]')
    answer = await posted.value
    assert answer.status == 303, f"sign-in answered {answer.status}: {await answer.text()}"
    await page.wait_for_url(site.url + path)


def shot(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / name)


async def test_a_check_that_fails_turns_red_live_without_a_reload(
        site: Site, target: Target, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems = watch(page)
    await sign_in(page, site)
    row = 'tr[data-check="backend-health"]'
    await page.wait_for_selector(f"{row}.state-up")
    await page.wait_for_selector("#live:not([hidden])")
    await page.wait_for_selector("#slos-table:not([hidden]) td:has-text('backend uptime')")
    await page.evaluate("window.__notReloaded = true")

    target.health_status = 503
    flipped = time.monotonic()
    await page.wait_for_selector(f"{row}.state-down", timeout=2000)
    assert time.monotonic() - flipped < 2.0
    assert await page.evaluate("window.__notReloaded === true")  # the same document
    assert await page.text_content(f"{row} .pill") == "down"
    await page.wait_for_timeout(1300)  # let the highlight fade before the screenshot
    await page.screenshot(path=shot("dashboard-overview.png"), full_page=True)
    assert problems == []


async def test_a_check_page_draws_its_chart(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(page)
    await sign_in(page, site, "/checks/backend-health")
    await page.wait_for_selector("#chart .uplot canvas", timeout=5000)
    await page.click('.ranges button[data-range="hour"]')
    await page.wait_for_selector('.ranges button[data-range="hour"][aria-pressed="true"]')
    await page.wait_for_selector("#chart .uplot canvas")
    await page.screenshot(path=shot("check.png"), full_page=True)
    assert problems == []


async def test_ack_an_alert_and_create_a_silence(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(page)
    await sign_in(page, site, "/alerts")
    row = 'tr[data-fingerprint="edge-down:down"]'
    await page.click(f"{row} button.ack")
    await page.wait_for_selector(f"{row} .alert-state:has-text('acknowledged')")
    engine = site.runtime.engine
    assert engine is not None and engine.alerts["edge-down:down"].state.value == "acknowledged"

    await page.click(f"{row} button.silence-this")
    assert await page.input_value('input[name="matchers"]') == "fingerprint=edge-down:down"
    await page.fill('input[name="matchers"]', "service=edge")
    await page.fill('input[name="comment"]', "<b>deploy</b> window")
    await page.click('#silence-form button[type="submit"]')
    await page.wait_for_selector("#silences td.comment:has-text('<b>deploy</b> window')")
    silences = site.runtime.require_store().list_silences(time.time())
    assert [s.comment for s in silences] == ["<b>deploy</b> window"]
    await page.screenshot(path=shot("alerts.png"), full_page=True)
    assert problems == []


async def test_the_status_page_on_a_desktop_and_a_phone(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(page)
    await page.goto(site.url + "/status")  # public: no sign-in
    assert await page.text_content("h1") == "Acme status"
    assert await page.locator("article.service").count() == 2
    assert await page.locator('article[data-service="edge"] .bar').count() == 90
    await page.screenshot(path=shot("status.png"), full_page=True)

    phone = await browser.new_context(viewport={"width": 390, "height": 844},
                                      device_scale_factor=2, is_mobile=True, has_touch=True)
    small = await phone.new_page()
    problems += watch(small)
    await small.goto(site.url + "/status")
    overflow = await small.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    visible = await small.locator('article[data-service="edge"] .bar:visible').count()
    assert visible == 30  # the last 30 days on a small screen
    await small.screenshot(path=shot("status-phone.png"), full_page=True)
    await phone.close()
    assert problems == []


async def test_the_sla_report_opens_in_the_browser(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1000, "height": 1200})
    problems = watch(page)
    month = time.strftime("%Y-%m", time.gmtime())  # this month so far: it has data
    await sign_in(page, site, "/")
    await page.goto(f"{site.url}/api/v1/reports/sla?month={month}&format=html")
    assert await page.text_content("h1") == f"Acme SLA — {month}"
    assert await page.locator("#summary tbody tr").count() == 3  # one row per service
    assert await page.locator(".charts svg").count() == 6  # two charts per service
    edge = page.locator("#summary tbody tr", has_text="edge")
    assert "0.000 %" in (await edge.text_content() or "")  # edge is always down
    await page.screenshot(path=shot("sla-report.png"), full_page=True)
    assert problems == []
