"""action: command — real subprocesses: environment, exit codes, timeouts, huge output."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.remediation.conftest import alert_request
from tocsin.remediation import RemediationError, build_action
from tocsin.remediation.command import CommandConfig

PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


def script(tmp_path: Path, source: str, name: str = "fix.py") -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


async def test_the_program_sees_the_alert_and_nothing_of_tocsins_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_PASSWORD", "hunter2-parent-secret")
    monkeypatch.setenv("RENDER_API_KEY", "rnd_parent_key_123")
    config = CommandConfig(action="command",
                           argv=[sys.executable, script(tmp_path, PRINT_ENV)],
                           env={"FIX_MODE": "hard"})
    outcome = await build_action(config).act(alert_request())
    assert outcome.accepted and outcome.data["exit_code"] == 0
    seen = json.loads(outcome.detail)
    assert {key: value for key, value in seen.items() if key.startswith("TOCSIN_")} == {
        "TOCSIN_ALERT_FINGERPRINT": "backend-http:up",
        "TOCSIN_ALERT_SERVICE": "backend",
        "TOCSIN_ALERT_CHECK": "backend-http",
        "TOCSIN_ALERT_SEVERITY": "P1",
        "TOCSIN_ALERT_SUMMARY": "backend is down",
        "TOCSIN_ALERT_MESSAGE": "HTTP 503 from /health",
        "TOCSIN_ALERT_VALUE": "503",
    }
    assert seen["FIX_MODE"] == "hard"
    assert "DATABASE_PASSWORD" not in seen and "RENDER_API_KEY" not in seen
    # Only PATH, HOME and LANG come from the parent (Python may add LC_CTYPE itself).
    assert set(seen) - {"PATH", "HOME", "LANG", "LC_CTYPE", "FIX_MODE"} == {
        key for key in seen if key.startswith("TOCSIN_ALERT_")}


async def test_no_shell_interprets_the_arguments(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    config = CommandConfig(action="command", argv=[
        sys.executable, "-c", "import sys; print(sys.argv[1])", f"; touch {marker}"])
    outcome = await build_action(config).act(alert_request())
    assert outcome.detail.strip() == f"; touch {marker}" and not marker.exists()


async def test_a_non_zero_exit_is_a_failed_attempt_with_the_output_tail(tmp_path: Path) -> None:
    source = "import sys; print('x' * 100_000); print('disk full', file=sys.stderr); sys.exit(3)"
    config = CommandConfig(action="command", argv=[sys.executable, script(tmp_path, source)])
    with pytest.raises(RemediationError) as caught:
        await build_action(config).act(alert_request())
    assert not caught.value.permanent
    assert "exited with code 3" in caught.value.message
    assert caught.value.message.endswith("disk full")
    assert len(caught.value.message) < 2500


async def test_a_missing_program_is_permanent(tmp_path: Path) -> None:
    config = CommandConfig(action="command", argv=[str(tmp_path / "no-such-fixer")])
    with pytest.raises(RemediationError, match="cannot run") as caught:
        await build_action(config).act(alert_request())
    assert caught.value.permanent


async def test_a_hang_is_killed_at_the_timeout_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    source = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n")
    config = CommandConfig(action="command", argv=[sys.executable, script(tmp_path, source)],
                           timeout="1s")
    started = time.monotonic()
    with pytest.raises(RemediationError, match=r"timed out after 1 s") as caught:
        await build_action(config).act(alert_request())
    assert time.monotonic() - started < 5
    assert not caught.value.permanent
    child = int(pid_file.read_text())
    for _ in range(50):  # the child is killed; init reaps it shortly after
        if not _alive(child):
            break
        await asyncio.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ")[1].startswith("Z"))


async def test_megabytes_of_output_are_capped(tmp_path: Path) -> None:
    source = ("import sys\n"
              "for _ in range(64):\n"
              "    sys.stdout.write('y' * 65536)\n")
    config = CommandConfig(action="command", argv=[sys.executable, script(tmp_path, source)],
                           output_cap="16KiB")
    outcome = await build_action(config).act(alert_request())
    assert outcome.accepted and outcome.data["output_bytes"] == 64 * 65536
    assert outcome.detail.startswith("y" * 16384)
    assert "… (truncated: 4194304 bytes in all, first 16384 kept)" in outcome.detail
    assert len(outcome.detail) < 16384 + 100


async def test_secret_env_values_are_masked_in_the_output(tmp_path: Path) -> None:
    config = CommandConfig(action="command", argv=[
        sys.executable, "-c", "import os; print(os.environ['FIX_TOKEN'])"],
        env={"FIX_TOKEN": "tok_abcdef123"})
    outcome = await build_action(config).act(alert_request())
    assert outcome.detail.strip() == "***"


@pytest.mark.parametrize("bad", [
    {"argv": []}, {"argv": [""]}, {"argv": ["fix"], "env": {"TOCSIN_ALERT_CHECK": "x"}},
    {"argv": ["fix"], "env": {"BAD NAME": "x"}}, {"argv": ["fix"], "shell": True},
    {"argv": ["fix"], "timeout": "0s"}])
def test_bad_command_configs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CommandConfig.model_validate({"action": "command", **bad})
