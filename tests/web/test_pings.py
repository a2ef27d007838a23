"""Heartbeat pings through the real web server of a Runtime, and what they set off.

Two heartbeats: ``backup`` (a daily job; its /fail pages P1 at once) and
``sync`` (period 2 s, grace 1 s: goes down within seconds without a ping).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tocsin.runtime import Runtime
from tocsin.testing import RecordingChannel

BACKUP_TOKEN = "backup-token-0123456789abcdef"
SYNC_TOKEN = "sync-token-0123456789abcdef"


@dataclass
class Server:
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.http.request(method, self.url + path, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json(), response.headers
            return response.status, await response.text(), response.headers

    async def heartbeat(self, name: str) -> dict[str, Any]:
        _, body, _ = await self.call("GET", "/api/v1/heartbeats")
        found: dict[str, Any] = next(h for h in body["items"] if h["name"] == name)
        return found

    async def wait_state(self, name: str, state: str, within: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            found = await self.heartbeat(name)
            if found["state"] == state:
                return found
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.05)


def write_config(tmp_path: Path, sync_rate: int = 60) -> Path:
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1s, timeout: 1s}}
scheduler: {{jitter: false}}
channels: {{rec: {{type: recording}}}}
services:
  jobs:
    checks:
      - type: heartbeat
        name: backup
        token: "${{BACKUP_PING_TOKEN}}"
        period: 1d
        body_limit: 100B
        interval: 30s
        alerts: [{{when: down, severity: P1, confirm: 0}}]
      - type: heartbeat
        name: sync
        token: "${{SYNC_PING_TOKEN}}"
        period: 2s
        grace: 1s
        rate_limit: {sync_rate}
""")
    return config


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.delenv("TOCSIN_API_TOKEN", raising=False)
    monkeypatch.setenv("BACKUP_PING_TOKEN", BACKUP_TOKEN)
    monkeypatch.setenv("SYNC_PING_TOKEN", SYNC_TOKEN)
    RecordingChannel.reset()
    async with running(write_config(tmp_path, sync_rate=5)) as server:
        yield server
    RecordingChannel.reset()


class running:
    def __init__(self, config: Path) -> None:
        self.runtime = Runtime(config)

    async def __aenter__(self) -> Server:
        self.task = asyncio.create_task(self.runtime.run())
        await asyncio.wait_for(self.runtime.ready.wait(), 10)
        assert self.runtime.web_address is not None
        host, port = self.runtime.web_address
        self.http = aiohttp.ClientSession()
        return Server(self.runtime, f"http://{host}:{port}", self.http)

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()
        self.runtime.request_stop()
        await asyncio.wait_for(self.task, 10)


async def test_get_post_and_head_signal_success(server: Server) -> None:
    for method in ("GET", "POST", "HEAD"):
        status, body, _ = await server.call(method, f"/ping/{BACKUP_TOKEN}")
        assert status == 200
        assert body == ("" if method == "HEAD" else "OK")
    found = await server.heartbeat("backup")
    assert found["state"] == "up" and found["status"] == "ok"
    assert BACKUP_TOKEN not in str(found)


async def test_unknown_token_is_a_plain_404_and_guessing_is_rate_limited(
        server: Server) -> None:
    status, body, _ = await server.call("GET", "/ping/not-a-real-token-0000000000")
    assert status == 404
    _, unknown_path, _ = await server.call("GET", "/no/such/page")
    assert body == unknown_path == {"detail": "Not Found"}
    codes = [(await server.call("POST", f"/ping/guess-{i:020d}/fail"))[0] for i in range(40)]
    assert codes.count(404) == 29 and codes[-1] == 429
    # A known token still works for the same client.
    assert (await server.call("GET", f"/ping/{BACKUP_TOKEN}"))[0] == 200


async def test_a_flood_of_pings_is_rate_limited_per_token(server: Server) -> None:
    codes = [(await server.call("GET", f"/ping/{SYNC_TOKEN}"))[0] for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3
    _, _, headers = await server.call("GET", f"/ping/{SYNC_TOKEN}")
    assert 1 <= int(headers["Retry-After"]) <= 12
    # The other heartbeat has its own budget.
    assert (await server.call("GET", f"/ping/{BACKUP_TOKEN}"))[0] == 200


async def test_fail_pages_at_once_with_the_body_and_truncates_a_big_body(
        server: Server) -> None:
    body = "pg_dump: error: connection refused\n" + "x" * 10_000
    status, _, _ = await server.call("POST", f"/ping/{BACKUP_TOKEN}/fail", data=body)
    assert status == 200
    deadline = time.monotonic() + 10
    while not RecordingChannel.sent.get("rec"):
        assert time.monotonic() < deadline, "the failure did not page"
        await asyncio.sleep(0.05)
    alert = RecordingChannel.sent["rec"][0].alerts[0]
    assert alert.check == "backup"
    assert "pg_dump: error: connection refused" in alert.message
    _, pings, _ = await server.call("GET", "/api/v1/heartbeats/backup/pings")
    (stored,) = pings["items"]
    assert stored["kind"] == "fail" and stored["truncated"] is True
    assert len(stored["body"].encode()) == 100


async def test_exit_codes_run_ids_and_bad_signals(server: Server) -> None:
    assert (await server.call("GET", f"/ping/{BACKUP_TOKEN}/start?rid=run-1"))[0] == 200
    await server.wait_state("backup", "running")
    await asyncio.sleep(0.2)
    assert (await server.call("GET", f"/ping/{BACKUP_TOKEN}/0?rid=run-1"))[0] == 200
    found = await server.wait_state("backup", "up")
    assert found["values"]["run_time"] >= 200
    assert (await server.call("GET", f"/ping/{BACKUP_TOKEN}/3"))[0] == 200
    found = await server.wait_state("backup", "failed")
    assert found["values"]["exit_code"] == 3
    assert (await server.call("POST", f"/ping/{BACKUP_TOKEN}/log", data="note"))[0] == 200
    assert (await server.heartbeat("backup"))["state"] == "failed"  # /log changes nothing
    for bad in ("/256", "/bogus", "/0?rid=" + "r" * 200, "/0?rid=a%20b"):
        status, _, _ = await server.call("GET", f"/ping/{BACKUP_TOKEN}{bad}")
        assert status == 400, bad


async def test_silence_past_grace_goes_down_and_a_ping_brings_it_back(server: Server) -> None:
    assert (await server.call("GET", f"/ping/{SYNC_TOKEN}"))[0] == 200
    await server.wait_state("sync", "up")
    await server.wait_state("sync", "late", within=5)
    down = await server.wait_state("sync", "down", within=5)
    assert down["status"] == "failing" and "no ping since" in down["message"]
    assert (await server.call("GET", f"/ping/{SYNC_TOKEN}"))[0] == 200
    await server.wait_state("sync", "up", within=2)


async def test_pings_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("BACKUP_PING_TOKEN", BACKUP_TOKEN)
    monkeypatch.setenv("SYNC_PING_TOKEN", SYNC_TOKEN)
    caplog.set_level(logging.DEBUG)
    config = write_config(tmp_path)
    async with running(config) as server:
        await server.call("GET", f"/ping/{BACKUP_TOKEN}/start?rid=r")
        await server.call("POST", f"/ping/{BACKUP_TOKEN}/1?rid=r", data="tar: disk full")
        await server.wait_state("backup", "failed")
    async with running(config) as server:
        found = await server.wait_state("backup", "failed", within=2)
        assert "tar: disk full" in found["message"]
        assert "run_time" in found["values"]
    assert all(BACKUP_TOKEN not in record.getMessage() for record in caplog.records)


def readme_crontab_line() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (line,) = [text for text in readme.splitlines() if "/ping/$BACKUP_PING_TOKEN/$?" in text]
    return line


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_readme_crontab_line_reports_the_exit_code_and_output(
        server: Server, tmp_path: Path) -> None:
    line = readme_crontab_line()
    schedule, command = line.split(" ", 5)[:5], line.split(" ", 5)[5]
    assert len(schedule) == 5  # five cron fields, then the command
    job = tmp_path / "backup.sh"
    job.write_text("#!/bin/sh\necho 'pg_dump: out of disk'\nexit 4\n")
    job.chmod(0o755)
    log = tmp_path / "backup.log"
    command = (command.replace("/usr/local/bin/backup.sh", str(job))
               .replace("/tmp/backup.log", str(log))
               .replace("https://tocsin.example.com", server.url))
    process = await asyncio.create_subprocess_exec(
        "sh", "-c", command, env={"PATH": "/usr/bin:/bin", "BACKUP_PING_TOKEN": BACKUP_TOKEN})
    assert await process.wait() == 0
    found = await server.wait_state("backup", "failed")
    assert found["values"]["exit_code"] == 4
    assert "pg_dump: out of disk" in found["message"]
