"""Reports in a running Tocsin: the scheduled SLA report by real SMTP, the health report,
the SLO and report API — and a burn-rate alert through the normal alerting pipeline."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pypdf import PdfReader

from mailserver import LocalController, MailServer, RecordingHandler
from tests.conftest import Target
from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.reports.sla import month_bounds, previous_month
from tocsin.runtime import Runtime
from tocsin.store import open_store
from tocsin.testing import RecordingChannel

MINUTE = 60.0


@pytest.fixture
def mail() -> Iterator[MailServer]:
    handler = RecordingHandler()
    controller = LocalController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    yield MailServer(port=controller.port, handler=handler)
    controller.stop()


def write_config(tmp_path: Path, target: Target, smtp_port: int) -> Path:
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1s, timeout: 1s}}
scheduler: {{jitter: false}}
channels:
  mail: {{type: smtp, host: 127.0.0.1, port: {smtp_port}, security: none,
          from: tocsin@example.com, to: [boss@example.com]}}
  pager: {{type: recording}}
policies:
  P1: {{channels: [pager]}}
  P3: {{channels: [pager]}}
services:
  backend:
    url: {target.url}
    checks:
      - {{type: http, name: api, path: /health}}
slos:
  - {{name: api uptime, service: backend, indicator: availability, objective: 99.9%}}
reports:
  sla: {{schedule: "0 0 * * *", channels: [mail], title: Acme SLA}}
""")
    return config


def seed_history(db: Path) -> tuple[str, float]:
    """Last month, one run a minute with 30 minutes down; and the last hour failing."""
    now = time.time()
    month = previous_month(now, "UTC")
    start, end = month_bounds(month, "UTC")
    store = open_store(f"sqlite:///{db}")
    store.migrate()
    outage = start + 3 * 86400
    runs = int((end - start) // MINUTE)
    results = [CheckResult("api", CheckStatus.ERROR if outage <= start + m * MINUTE
                           < outage + 30 * MINUTE else CheckStatus.OK, start + m * MINUTE, 50.0)
               for m in range(runs)]
    # The last 20 minutes failing: fast burn (1 h and 5 m windows) well above 14.4.
    results += [CheckResult("api", CheckStatus.ERROR, now - 20 * MINUTE + m * MINUTE, 50.0)
                for m in range(20)]
    for offset in range(0, len(results), 20_000):
        store.write_results(results[offset:offset + 20_000])
    store.close()
    return month, now


class running:
    def __init__(self, config: Path) -> None:
        self.runtime = Runtime(config)

    async def __aenter__(self) -> tuple[Runtime, str]:
        self.task = asyncio.create_task(self.runtime.run())
        await asyncio.wait_for(self.runtime.ready.wait(), 15)
        assert self.runtime.web_address is not None
        host, port = self.runtime.web_address
        return self.runtime, f"http://{host}:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.runtime.request_stop()
        await asyncio.wait_for(self.task, 15)


async def wait_for(condition: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def get(url: str) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body: Any = (await response.json() if response.content_type == "application/json"
                     else await response.read())
        return response.status, body, response.headers.get("Content-Security-Policy", "")


@pytest.fixture
async def reset_recording() -> AsyncIterator[None]:
    RecordingChannel.reset()
    yield
    RecordingChannel.reset()


@pytest.mark.slow
async def test_scheduled_sla_report_is_mailed_once_with_its_pdf(
        tmp_path: Path, target: Target, mail: MailServer, reset_recording: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOCSIN_API_TOKEN", raising=False)
    month, _ = seed_history(tmp_path / "tocsin.db")
    config = write_config(tmp_path, target, mail.port)
    async with running(config) as (runtime, url):
        # The schedule fired at midnight, within the catch-up: the report goes out at start.
        await wait_for(lambda: len(mail.received) == 1)
        message = mail.received[0].message
        assert str(message["Subject"]) == f"[Tocsin] Acme SLA — {month}"
        assert message["X-Tocsin-Kind"] == "report"
        (pdf,) = [part for part in message.iter_attachments()
                  if part.get_content_type() == "application/pdf"]
        assert pdf.get_filename() == f"sla-{month}.pdf"
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(
            pdf.get_content())).pages)
        assert "Acme SLA" in text and "30.0 min" in text
        assert "uptime" in mail.received[0].part("plain")

        # The burn-rate alert went through the ordinary pipeline to the P1 channel.
        await wait_for(lambda: any(
            alert.fingerprint.startswith("slo:api uptime:burn-page-fast")
            for note in RecordingChannel.sent.get("pager", []) for alert in note.alerts))
        page = next(note for note in RecordingChannel.sent["pager"]
                    if note.alerts[0].check == "slo:api uptime")
        assert page.severity.value == "P1"
        assert "SLO 'api uptime' burns its error budget" in page.alerts[0].summary

        deadline = time.monotonic() + 20
        while True:  # the burn series comes from the SLO check's stored results
            status, slos, _ = await get(f"{url}/api/v1/slos")
            assert status == 200
            (slo,) = slos["items"]
            if slo["burn"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert slo["name"] == "api uptime" and slo["values"]["page_fast"] >= 14.4
        assert slo["objective"] == pytest.approx(0.999)
        assert slo["burn"] and slo["burn"][-1][1] >= 14.4

        status, body, csp = await get(f"{url}/api/v1/reports/sla?month={month}&format=html")
        assert status == 200 and b"Acme SLA" in body and "script-src" not in csp
        status, body, _ = await get(f"{url}/api/v1/reports/sla?month=2099-01")
        assert status == 422 and "has not begun" in body["detail"]

        report = await runtime.health_reports.run_once()  # type: ignore[union-attr]
        services: Any = report.data["services"]
        assert services[0]["name"] == "backend"
        status, health, _ = await get(f"{url}/api/v1/reports/health/latest")
        assert status == 200 and health["overall"] in ("operational", "degraded", "down")
        assert health["slos"][0]["name"] == "api uptime"
    # A restart runs the catch-up again: the outbox already has the report, no second mail.
    async with running(config):
        await asyncio.sleep(1.5)
    assert len(mail.received) == 1
