"""`tocsin demo`: the whole loop (P1 email, restart, verification, RECOVERED) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import pytest

from tests.test_cli import TOCSIN, _env

pytestmark = pytest.mark.slow


async def test_demo_shows_the_whole_loop_on_loopback_only(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *TOCSIN, "demo", "--break-after", "2", "--duration", "60", cwd=tmp_path, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    config_text = ""
    try:
        async with asyncio.timeout(60):
            while not any(re.search(r"mail: .*RECOVERED", line) for line in lines):
                line = (await process.stdout.readline()).decode()
                assert line, "".join(lines)
                lines.append(line)
                if match := re.search(r"config: (\S+)", line):
                    config_text = await asyncio.to_thread(Path(match.group(1)).read_text)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(process.communicate(), 20)
    out = "".join(lines) + rest.decode()
    assert process.returncode == 0, (out, err.decode())
    assert "demo stopped" in out

    def first(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, (pattern, "".join(lines))
        return found[0]

    broken = first(r"backend: BROKEN")
    firing = first(r"mail: \[Tocsin\] P1 FIRING backend:http is down")
    restart = first(r"render: POST /services/srv-backend-id/restart accepted")
    started = first(r"mail: \[Tocsin\] P1 REMEDIATION remediation started: platform\.restart "
                    r"for backend")
    recovered = first(r"mail: \[Tocsin\] P1 RECOVERED backend is back after restart")
    assert broken < firing < recovered and restart < recovered and started < recovered, out
    assert "no dashboard yet" in out and "/api/v1/remediation/attempts" in out

    # Every address it printed, and every one in the config it ran, is loopback.
    printed = re.findall(r"\b(?:https?|smtp)://([^/:\s]+)", out)
    assert printed and set(printed) == {"127.0.0.1"}, printed
    assert config_text
    configured = re.findall(r"\b(?:https?|smtp|sqlite)://([^/:\s\"]*)", config_text)
    hosts = re.findall(r"\bhost: ([^,}\s]+)", config_text)
    assert set(configured) <= {"127.0.0.1", ""} and set(hosts) == {"127.0.0.1"}, config_text
    assert "render.com" not in config_text.replace("dashboard.render.com", "")
