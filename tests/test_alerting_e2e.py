"""End to end: a real `tocsin run`, a real aiohttp target, a real aiosmtpd mail server.

Down → confirmed → one P1 email; still down → a repeat only after the window;
recovered → one resolved email; silenced → recorded, not sent; acknowledged →
no repeat; unacknowledged → escalated. And the process killed with SIGKILL:
the pending notification is delivered at restart, once, and the incident is
neither re-paged nor left unresolved.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mailserver import LocalController, MailServer, RecordingHandler
from tests.conftest import Target
from tests.test_cli import running_tocsin

pytestmark = pytest.mark.slow


@pytest.fixture
def mail() -> Iterator[MailServer]:
    handler = RecordingHandler()
    controller = LocalController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    yield MailServer(port=controller.port, handler=handler)
    controller.stop()


def write_config(tmp_path: Path, target: Target, smtp_port: int, policy: str,
                 alert: str = "{when: down, severity: P1, retry_interval: 1s}") -> Path:
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1s, timeout: 1s}}
channels:
  mail: {{type: smtp, host: 127.0.0.1, port: {smtp_port}, security: none,
          from: tocsin@example.com, to: [oncall@example.com]}}
  boss: {{type: smtp, host: 127.0.0.1, port: {smtp_port}, security: none,
          from: tocsin@example.com, to: [boss@example.com]}}
policies:
  dedup_window: 1s
  P1: {policy}
services:
  backend:
    url: {target.url}
    checks:
      - type: http
        name: api
        path: /health
        alerts: [{alert}]
""")
    return config


def subjects(server: MailServer, to: str | None = None) -> list[str]:
    return [str(r.message["Subject"]) for r in server.received
            if to is None or to in r.recipients]


async def wait_for(condition: Any, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def api(method: str, url: str, **kwargs: Any) -> Any:
    async with aiohttp.ClientSession() as session, \
            session.request(method, url, **kwargs) as response:
        assert response.status < 300, await response.text()
        return await response.json()


async def test_down_pages_once_repeats_after_the_window_and_resolves_once(
        tmp_path: Path, target: Target, mail: MailServer) -> None:
    config = write_config(tmp_path, target, mail.port, "{channels: [mail], repeat: 4s}")
    async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, _):
        await asyncio.sleep(2.5)
        assert mail.received == []
        target.health_status = 503
        await wait_for(lambda: len(mail.received) == 1)
        first = mail.received[0]
        assert str(first.message["Subject"]).startswith("[Tocsin] P1 FIRING")
        assert first.message["X-Priority"].startswith("1")
        await asyncio.sleep(2.0)
        assert len(mail.received) == 1  # the repeat window is 4 s
        await wait_for(lambda: len(mail.received) == 2, within=6)
        assert "STILL FIRING" in subjects(mail)[1] or "P1" in subjects(mail)[1]
        target.health_status = 200
        await wait_for(lambda: any("RESOLVED" in s for s in subjects(mail)))
        await asyncio.sleep(2.0)
        resolved = [s for s in subjects(mail) if "RESOLVED" in s]
        assert len(resolved) == 1
        alerts = await api("GET", f"{url}/api/v1/alerts")
        assert alerts["items"][0]["state"] == "resolved"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0


async def test_escalation_after_the_delay_and_ack_stops_repeats(
        tmp_path: Path, target: Target, mail: MailServer) -> None:
    policy = "{channels: [mail], repeat: 3s, escalate_after: 2s, escalation: [boss]}"
    config = write_config(tmp_path, target, mail.port, policy)
    async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, _):
        target.health_status = 503
        await wait_for(lambda: len(subjects(mail, "oncall@example.com")) == 1)
        await wait_for(lambda: len(subjects(mail, "boss@example.com")) == 1, within=5)
        assert "ESCALATED" in subjects(mail, "boss@example.com")[0]
        acked = await api("POST", f"{url}/api/v1/alerts/api:down/ack", json={"by": "alice"})
        assert acked["state"] == "acknowledged"
        count = len(mail.received)
        await asyncio.sleep(5)
        assert len(mail.received) == count  # no repeat, no second escalation
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0


async def test_a_silenced_alert_is_recorded_and_not_sent(
        tmp_path: Path, target: Target, mail: MailServer) -> None:
    config = write_config(tmp_path, target, mail.port, "{channels: [mail], repeat: 2s}")
    async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, _):
        await api("POST", f"{url}/api/v1/silences", json={
            "matchers": ["service=backend"], "duration": "1h", "created_by": "bob",
            "comment": "planned work"})
        target.health_status = 503

        async def firing() -> list[Any]:
            body = await api("GET", f"{url}/api/v1/alerts?state=firing")
            return list(body["items"])

        for _ in range(100):
            if items := await firing():
                break
            await asyncio.sleep(0.1)
        assert items and items[0]["flags"]["silenced"]
        await asyncio.sleep(3)
        assert mail.received == []
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sigkill_before_send_delivers_once_at_restart_and_still_resolves(
        tmp_path: Path, target: Target) -> None:
    port = _free_port()  # nothing listens yet: the page waits in the outbox
    config = write_config(tmp_path, target, port, "{channels: [mail], repeat: 1h}")
    target.health_status = 503
    async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, _):
        async def pending() -> list[Any]:
            body = await api("GET", f"{url}/api/v1/deliveries?status=pending")
            return [d for d in body["items"] if d["attempts"] >= 1]

        for _ in range(150):
            if await pending():
                break
            await asyncio.sleep(0.1)
        assert await pending(), "the page never reached the outbox"
        process.send_signal(signal.SIGKILL)
        await process.wait()

    handler = RecordingHandler()
    controller = LocalController(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, log):
            await wait_for(lambda: len(handler.received) == 1, within=20)
            first = handler.received[0]
            assert "P1 FIRING" in str(first.message["Subject"])
            await asyncio.sleep(3)  # still down: restored, so no second page
            assert len(handler.received) == 1
            assert any("restored 1 open alerts" in line for line in log)
            target.health_status = 200
            await wait_for(lambda: len(handler.received) == 2)
            assert "RESOLVED" in str(handler.received[1].message["Subject"])
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        controller.stop()
