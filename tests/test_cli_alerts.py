"""``tocsin ack / unack / alerts / silence``, run as processes against a real ``tocsin run``."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Target
from tests.test_cli import TOCSIN, _env, tocsin

FINGERPRINT = "backend-down:down"


def write_config(path: Path, target_url: str, web_port: int = 0) -> Path:
    path.write_text(f"""\
storage: sqlite:///{path.parent / 'tocsin.db'}
web: {{host: 127.0.0.1, port: {web_port}}}
defaults: {{interval: 1s, timeout: 2s}}
channels: {{rec: {{type: recording}}}}
services:
  backend:
    url: {target_url}
    checks:
      - type: http
        name: backend-down
        path: /down
        alerts: [{{when: down, severity: P1, confirm: 0}}]
""")
    return path


@asynccontextmanager
async def serving(cwd: Path, config: Path, env: dict[str, str] | None = None
                  ) -> AsyncIterator[str]:
    """``tocsin run`` on port 0: yield its URL (from its log) once its alert fires."""
    process = await asyncio.create_subprocess_exec(
        *TOCSIN, "run", "-c", str(config), cwd=cwd, env=env or _env(),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    drain: asyncio.Task[bytes] | None = None
    try:
        url = ""
        while not url:
            line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
            assert line, "tocsin run exited early:\n" + "".join(log)
            log.append(line)
            if match := re.search(r"web: (http://\S+)", line):
                url = match.group(1)
        while "sent firing to rec" not in "".join(log):
            log.append((await asyncio.wait_for(process.stderr.readline(), 20)).decode())
        drain = asyncio.create_task(process.stderr.read())  # keep its pipe from filling up
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 15)
        if drain is not None:
            await drain


@pytest.fixture
async def server(tmp_path: Path, target: Target) -> AsyncIterator[str]:
    async with serving(tmp_path, write_config(tmp_path / "tocsin.yaml", target.url)) as url:
        yield url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rows(out: str) -> list[list[str]]:
    """A plain table's lines, split on runs of two or more spaces."""
    return [re.split(r"\s{2,}", line) for line in out.splitlines()]


# -- alerts, ack, unack ---------------------------------------------------------------------

async def test_alerts_lists_the_firing_alert_as_a_plain_table(tmp_path: Path,
                                                               server: str) -> None:
    code, out, err = await tocsin("alerts", "--url", server, cwd=tmp_path)
    assert code == 0, err
    table = rows(out)
    assert table[0] == ["FINGERPRINT", "STATE", "SEVERITY", "SERVICE", "SINCE", "SUMMARY"]
    assert table[1][:4] == [FINGERPRINT, "firing", "P1", "backend"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", table[1][4])
    assert "\x1b[" not in out
    code, out, _ = await tocsin("alerts", "--url", server, "--service", "frontend", cwd=tmp_path)
    assert code == 0 and out == "no alerts\n"
    code, _, err = await tocsin("alerts", "--url", server, "--state", "exploded", cwd=tmp_path)
    assert code == 2 and "exploded" in err


async def test_ack_and_unack_change_what_alerts_shows(tmp_path: Path, server: str) -> None:
    code, out, err = await tocsin("ack", FINGERPRINT, "--by", "alice", "--url", server,
                                  cwd=tmp_path)
    assert code == 0, err
    assert out == f"acknowledged {FINGERPRINT} (by alice)\n"
    code, out, _ = await tocsin("alerts", "--state", "acknowledged", "--url", server,
                                cwd=tmp_path)
    assert code == 0
    assert rows(out)[1][1] == "acknowledged"
    assert rows(out)[1][5].startswith("acked by alice")
    code, out, _ = await tocsin("ack", FINGERPRINT, "--by", "bob", "--url", server,
                                cwd=tmp_path)
    assert code == 0 and f"{FINGERPRINT} was already acknowledged by alice" in out

    code, out, _ = await tocsin("unack", FINGERPRINT, "--url", server, cwd=tmp_path)
    assert code == 0 and out == f"{FINGERPRINT} is firing (not acknowledged)\n"
    code, out, _ = await tocsin("alerts", "--state", "firing", "--url", server, cwd=tmp_path)
    assert rows(out)[1][:2] == [FINGERPRINT, "firing"]


async def test_ack_by_defaults_to_the_user(tmp_path: Path, server: str) -> None:
    code, out, _ = await tocsin("ack", FINGERPRINT, "--url", server, cwd=tmp_path,
                                env=_env(USER="dora"))
    assert code == 0 and out == f"acknowledged {FINGERPRINT} (by dora)\n"


async def test_ack_of_an_unknown_alert_exits_one(tmp_path: Path, server: str) -> None:
    for command in ("ack", "unack"):
        code, out, err = await tocsin(command, "nope:down", "--url", server, cwd=tmp_path)
        assert code == 1
        assert err == "no alert 'nope:down'\n" and out == ""


# -- silences -------------------------------------------------------------------------------

async def test_silence_add_list_and_expire(tmp_path: Path, server: str) -> None:
    code, out, err = await tocsin(
        "silence", "add", "service=backend", "alertname=~down|failed", "--duration", "2h",
        "--comment", "deploy", "--by", "alice", "--url", server, cwd=tmp_path)
    assert code == 0, err
    silence_id = out.strip()
    assert re.fullmatch(r"sil-[0-9a-f]+", silence_id)
    assert "silenced service=backend alertname=~down|failed until" in err

    code, out, _ = await tocsin("silence", "list", "--url", server, cwd=tmp_path)
    assert code == 0
    table = rows(out)
    assert table[0] == ["ID", "STATE", "MATCHERS", "STARTS", "ENDS", "BY", "COMMENT"]
    assert len(table) == 2
    assert table[1][:3] == [silence_id, "active", "service=backend alertname=~down|failed"]
    assert table[1][5:] == ["alice", "deploy"]
    starts, ends = (datetime.fromisoformat(cell) for cell in table[1][3:5])
    assert ends - starts == timedelta(hours=2)

    code, out, _ = await tocsin("silence", "expire", silence_id, "--url", server, cwd=tmp_path)
    assert code == 0 and out == f"expired {silence_id}\n"
    code, out, _ = await tocsin("silence", "list", "--url", server, cwd=tmp_path)
    assert code == 0 and out == "no silences\n"
    code, out, _ = await tocsin("silence", "list", "--all", "--url", server, cwd=tmp_path)
    assert rows(out)[1][:2] == [silence_id, "expired"]

    code, _, err = await tocsin("silence", "expire", "sil-nope", "--url", server, cwd=tmp_path)
    assert code == 1 and err == "no silence 'sil-nope'\n"


async def test_silence_until_a_local_time(tmp_path: Path, server: str) -> None:
    until = (datetime.now() + timedelta(days=1)).replace(microsecond=0)
    code, out, err = await tocsin("silence", "add", "check=backend-down", "--until",
                                  until.isoformat(), "--url", server, cwd=tmp_path)
    assert code == 0, err
    _, listed, _ = await tocsin("silence", "list", "--url", server, cwd=tmp_path)
    assert rows(listed)[1][0] == out.strip()
    assert rows(listed)[1][4] == until.strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(("args", "reason"), [
    (["service", "--duration", "2h"], "invalid matcher 'service'"),
    (["alertname=~(", "--duration", "2h"], "invalid regex"),
    (["service=backend", "--duration", "2 parsecs"], "invalid duration '2 parsecs'"),
    (["service=backend", "--duration", "0s"], "longer than zero"),
    (["service=backend"], "--duration 2h, or --until"),
    (["service=backend", "--duration", "2h", "--until", "2100-01-01"], "--duration 2h, or"),
    (["service=backend", "--until", "next tuesday"], "invalid --until 'next tuesday'"),
])
async def test_silence_add_refuses_bad_input_before_asking_the_server(
        tmp_path: Path, args: list[str], reason: str) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens: refused before any request
    code, out, err = await tocsin("silence", "add", *args, "--url", url, cwd=tmp_path)
    assert code == 2
    assert reason in err and out == ""


async def test_silence_add_shows_the_servers_reason_with_exit_two(tmp_path: Path,
                                                                   server: str) -> None:
    for args, reason in [(["service=backend", "--until", "2001-01-01T00:00"],
                          "a silence must end in the future"),
                         (["service=", "--duration", "2h"], "at least one matcher")]:
        code, out, err = await tocsin("silence", "add", *args, "--url", server, cwd=tmp_path)
        assert code == 2, err
        assert reason in err and out == ""


async def test_silence_add_needs_a_matcher(tmp_path: Path) -> None:
    code, _, err = await tocsin("silence", "add", "--duration", "2h", cwd=tmp_path)
    assert code == 2 and "MATCHERS" in err


# -- errors reaching the server -------------------------------------------------------------

async def test_a_server_that_is_not_running_is_named_clearly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    for args in (["alerts"], ["ack", FINGERPRINT], ["silence", "list"],
                 ["silence", "add", "service=backend", "--duration", "1h"]):
        code, out, err = await tocsin(*args, "--url", url, cwd=tmp_path)
        assert code == 1, args
        assert err.startswith(f"cannot reach Tocsin at {url} (is `tocsin run` running?)")
        assert "Traceback" not in err and out == ""


async def test_the_url_comes_from_the_config_or_tocsin_url(tmp_path: Path) -> None:
    port = _free_port()
    config = write_config(tmp_path / "tocsin.yaml", "http://127.0.0.1:9", web_port=port)
    code, _, err = await tocsin("alerts", "-c", str(config), cwd=tmp_path)
    assert code == 1 and f"cannot reach Tocsin at http://127.0.0.1:{port} " in err
    code, _, err = await tocsin("alerts", cwd=tmp_path, env=_env(TOCSIN_URL="http://[::1]:9"))
    assert code == 1 and "cannot reach Tocsin at http://[::1]:9 " in err
    config.write_text("services: [\n")
    code, _, err = await tocsin("alerts", "-c", str(config), cwd=tmp_path)
    assert code == 2 and "tocsin.yaml" in err


async def test_writes_send_the_api_token_from_the_environment(tmp_path: Path,
                                                              target: Target) -> None:
    config = write_config(tmp_path / "tocsin.yaml", target.url)
    async with serving(tmp_path, config, env=_env(TOCSIN_API_TOKEN="t0ken")) as url:
        code, out, err = await tocsin("ack", FINGERPRINT, "--url", url, cwd=tmp_path)
        assert code == 1 and out == ""
        assert err == "Tocsin requires an API token for this: set TOCSIN_API_TOKEN\n"
        code, _, err = await tocsin("silence", "add", "service=backend", "--duration", "1h",
                                    "--url", url, cwd=tmp_path,
                                    env=_env(TOCSIN_API_TOKEN="wrong"))
        assert code == 1 and "refused the API token: set TOCSIN_API_TOKEN" in err
        code, out, err = await tocsin("alerts", "--url", url, cwd=tmp_path)
        assert code == 1 and out == ""  # a configured token ends the loopback exception
        assert err == "Tocsin requires an API token for this: set TOCSIN_API_TOKEN\n"
        code, out, _ = await tocsin("alerts", "--url", url, cwd=tmp_path,
                                    env=_env(TOCSIN_API_TOKEN="t0ken"))
        assert code == 0 and "firing" in out
        code, out, err = await tocsin("ack", FINGERPRINT, "--by", "alice", "--url", url,
                                      cwd=tmp_path, env=_env(TOCSIN_API_TOKEN="t0ken"))
        assert code == 0, err
        assert out == f"acknowledged {FINGERPRINT} (by alice)\n"
