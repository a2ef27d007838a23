"""`tocsin drill`, `tocsin channels` and `tocsin channels test` against a running server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailserver import LocalController, MailServer, RecordingHandler
from tests.test_cli import running_tocsin, tocsin


@pytest.fixture
def mail() -> Iterator[MailServer]:
    handler = RecordingHandler()
    controller = LocalController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    yield MailServer(port=controller.port, handler=handler)
    controller.stop()


def _config(tmp_path: Path, smtp_port: int) -> Path:
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0}}
channels:
  mail: {{type: smtp, host: 127.0.0.1, port: {smtp_port}, security: none,
          from: tocsin@example.com, to: [oncall@example.com]}}
  broken: {{type: recording, fail_times: 1000, permanent: true}}
policies:
  P1: {{channels: [mail, broken]}}
""")
    return config


async def test_drill_reports_each_route_and_fails_when_one_is_down(
        tmp_path: Path, mail: MailServer) -> None:
    config = _config(tmp_path, mail.port)
    async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, _):
        code, out, err = await tocsin("drill", "--url", url, "--wait", "10", cwd=tmp_path)
        assert code == 1, (out, err)
        assert re.search(r"^mail\s+delivered\s+\d+ ms", out, re.M), out
        assert re.search(r"^broken\s+FAILED\s+-\s+recording channel 'broken'", out, re.M), out
        assert "did not reach every channel" in err
        assert len(mail.received) == 1
        message = mail.received[0].message
        assert "DRILL" in str(message["Subject"]) and message["X-Tocsin-Kind"] == "test"

        code, out, _ = await tocsin("channels", "test", "mail", "--url", url, cwd=tmp_path)
        assert code == 0 and re.search(r"^mail\s+delivered", out, re.M), out
        code, _, err = await tocsin("channels", "test", "nope", "--url", url, cwd=tmp_path)
        assert code == 1 and "no channel 'nope'" in err

        code, out, _ = await tocsin("channels", "--url", url, cwd=tmp_path)
        assert code == 0
        rows = {line.split()[0]: line for line in out.splitlines()[1:]}
        assert rows["mail"].split()[1:3] == ["ok", "smtp"]
        assert re.search(r"\s0\s+1\s+recording channel", rows["broken"]), rows["broken"]
        process.terminate()
        await process.wait()
