"""End to end: SendGrid refuses the key, the SMTP fallback delivers and says so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.sendgrid import SendGridFake
from mailserver import LocalController, MailServer, RecordingHandler
from tests.test_cli import TOCSIN, _env


@pytest.fixture
def mail() -> Iterator[MailServer]:
    handler = RecordingHandler()
    controller = LocalController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    yield MailServer(port=controller.port, handler=handler)
    controller.stop()


async def test_sendgrid_failing_falls_back_to_smtp_and_the_message_says_so(
        tmp_path: Path, mail: MailServer) -> None:
    async with SendGridFake.running(api_key="SG.the-right-key") as sendgrid:
        config = tmp_path / "tocsin.yaml"
        config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
channels:
  email:
    type: sendgrid
    api_key: ${{SENDGRID_API_KEY}}
    base_url: {sendgrid.url}
    from: alerts@example.com
    to: [oncall@example.com]
    fallback: smtp
  smtp: {{type: smtp, host: 127.0.0.1, port: {mail.port}, security: none}}
policies:
  P1: {{channels: [email]}}
""")
        env = _env(SENDGRID_API_KEY="SG.a-wrong-key")
        process = await asyncio.create_subprocess_exec(
            *TOCSIN, "run", "-c", str(config), cwd=tmp_path, env=env,
            stderr=asyncio.subprocess.PIPE)
        assert process.stderr is not None
        url = ""
        log: list[str] = []
        while not url:
            line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
            assert line, "".join(log)
            log.append(line)
            if "web: http://" in line:
                url = line.split("web: ", 1)[1].strip()
        drill = await asyncio.create_subprocess_exec(
            *TOCSIN, "drill", "--url", url, "--wait", "10", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(drill.communicate(), 30)
        assert drill.returncode == 1  # the primary route failed, and the drill says so
        assert "email" in out.decode() and "HTTP 401" in out.decode()
        for _ in range(100):
            if mail.received:
                break
            await asyncio.sleep(0.1)
        process.terminate()
        rest = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
        await process.wait()
    assert [r.status for r in sendgrid.received] == [401]
    assert len(mail.received) == 1
    message = mail.received[0]
    assert message.recipients == ["oncall@example.com"]  # the fallback took its addresses
    assert "fallback after email failed" in message.part("plain")
    assert "SG.a-wrong-key" not in "".join(log) + rest + out.decode()  # never logged
