"""End to end: a real `tocsin run` restarts a down backend through the fake Render API.

The notification sequence arrives at a real SMTP server, the fake records the
exact API calls, and `tocsin remediation log` shows the audit trail.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailserver import LocalController, MailServer, RecordingHandler
from tests.conftest import Target
from tests.fakes.render import FakeRender
from tests.test_cli import TOCSIN, _env, tocsin

pytestmark = pytest.mark.slow
API_KEY = "rnd_remediation_e2e_key"


@pytest.fixture
def mail() -> Iterator[MailServer]:
    handler = RecordingHandler()
    controller = LocalController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    yield MailServer(port=controller.port, handler=handler)
    controller.stop()


def subjects(mail: MailServer) -> list[str]:
    return [str(r.message["Subject"]) for r in mail.received]


def write_config(tmp_path: Path, target: Target, render: FakeRender, mail: MailServer,
                 policy: str, rule_extra: str) -> Path:
    """A backend on the fake Render platform whose down alert asks for `restart`."""
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
defaults: {{interval: 1s, timeout: 1s}}
platforms:
  render: {{type: render, api_key: "${{RENDER_API_KEY}}", base_url: "{render.url}"}}
channels:
  mail: {{type: smtp, host: 127.0.0.1, port: {mail.port}, security: none,
          from: tocsin@example.com, to: [oncall@example.com]}}
remediation:
  {policy}
services:
  backend:
    url: {target.url}
    platform: {{name: render, service_id: srv-backend}}
    checks:
      - type: http
        name: api
        path: /health
        alerts: [{{when: down, severity: P1, retry_interval: 1s, remediate: restart{rule_extra}}}]
""")
    return config


async def wait_for(condition: object, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not (callable(condition) and condition()):
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


async def test_a_down_backend_is_restarted_verified_and_reported(
        tmp_path: Path, target: Target, mail: MailServer) -> None:
    async with FakeRender(api_key=API_KEY) as render:
        render.add_service("srv-backend")
        render.add_deploy("srv-backend", "live")

        def back_up() -> None:
            target.health_status = 200

        render.on_restart("srv-backend", back_up, delay=0.5)
        config = write_config(tmp_path, target, render, mail,
                              "restart: {action: platform.restart, verify_after: 2s,"
                              " max_attempts: 3, per: 1h}", "")
        env = _env(RENDER_API_KEY=API_KEY)
        process, url = await _start(config, tmp_path, env)
        try:
            target.health_status = 503
            await wait_for(lambda: any("RECOVERED" in s for s in subjects(mail)))
            await asyncio.sleep(3)  # nothing else should follow
            code, out, _ = await tocsin("remediation", "log", "--url", url, cwd=tmp_path,
                                        env=env)
        finally:
            process.terminate()
            assert process.stderr is not None
            rest = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
            await process.wait()
    sent = [s.strip() for s in subjects(mail)]
    words = ("RECOVERY FAILED", "FIRING", "remediation started", "RECOVERED", "RESOLVED")
    kinds = [next((word for word in words if word in s), s) for s in sent]
    # The page, the action taken, then both: the alert resolves on its own results and
    # the remediation reports its verified recovery.
    assert kinds[:2] == ["FIRING", "remediation started"], sent
    assert sorted(kinds[2:]) == ["RECOVERED", "RESOLVED"], sent
    restarts = [r for r in render.requests if r.method == "POST"]
    assert [(r.method, r.path) for r in restarts] == [
        ("POST", "/services/srv-backend/restart")], render.requests
    assert code == 0 and re.search(r"recovered\s+backend\s+platform.restart", out), out
    assert API_KEY not in rest + out  # never logged


async def _start(config: Path, cwd: Path, env: dict[str, str]) -> tuple[
        asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        *TOCSIN, "run", "-c", str(config), cwd=cwd, env=env, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    log: list[str] = []
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        assert line, "".join(log)
        log.append(line)
        if match := re.search(r"web: (http://\S+)", line):
            return process, match.group(1)


async def test_killed_during_verification_resumes_it_without_a_second_restart(
        tmp_path: Path, target: Target, mail: MailServer) -> None:
    async with FakeRender(api_key=API_KEY) as render:
        render.add_service("srv-backend")
        render.add_deploy("srv-backend", "live")

        def back_up() -> None:
            target.health_status = 200

        render.on_restart("srv-backend", back_up, delay=0.5)
        config = write_config(tmp_path, target, render, mail,
                              "restart: {action: platform.restart, verify_after: 6s}",
                              ", recover: 30")
        env = _env(RENDER_API_KEY=API_KEY)
        target.health_status = 503
        process, _ = await _start(config, tmp_path, env)
        await wait_for(lambda: any("remediation started" in s for s in subjects(mail)))
        await asyncio.sleep(1)  # restarted; now verifying
        process.kill()
        await process.wait()

        process, url = await _start(config, tmp_path, env)
        try:
            await wait_for(lambda: any("RECOVERED" in s for s in subjects(mail)), within=30)
            code, out, _ = await tocsin("remediation", "log", "--url", url, cwd=tmp_path,
                                        env=env)
        finally:
            process.terminate()
            await process.wait()
    restarts = [r for r in render.requests if r.method == "POST"]
    assert len(restarts) == 1, render.requests
    assert code == 0 and "interrupted" in out, out
