"""The ``tocsin`` command, run as a real process against real local servers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import Target

TOCSIN = [sys.executable, "-m", "tocsin"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN", "BACKEND"))}
    env.update(extra)
    return env


async def tocsin(*args: str, cwd: Path, env: dict[str, str] | None = None,
                 within: float = 30) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *TOCSIN, *args, cwd=cwd, env=env or _env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_config(path: Path, target_url: str, *, extra_checks: str = "", web_port: int = 0,
                 interval: str = "1s") -> Path:
    path.write_text(f"""\
storage: sqlite:///{path.parent / 'tocsin.db'}
web: {{host: 127.0.0.1, port: {web_port}}}
defaults: {{interval: {interval}, timeout: 2s}}
services:
  backend:
    url: {target_url}
    checks:
      - {{type: http, name: backend-health, path: /health, expect: {{status: 200}}}}
{extra_checks}""")
    return path


# -- validate ---------------------------------------------------------------

async def test_validate_prints_ok_for_a_good_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tocsin.yaml", "http://127.0.0.1:9")
    code, out, _ = await tocsin("validate", str(config), cwd=tmp_path)
    assert code == 0
    assert out.startswith("ok")


async def test_validate_prints_every_error_with_path_and_line(tmp_path: Path) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text("""\
services:
  backend:
    url: 127.0.0.1:8001
    checks:
      - type: http
        path: /health
        tiemout: 10s
      - type: http
        name: other
        interval: 10 parsecs
""")
    code, _, err = await tocsin("validate", str(config), cwd=tmp_path)
    assert code == 2
    assert "tocsin.yaml:3" in err and "services.backend.url" in err
    assert "tocsin.yaml:7" in err and "services.backend.checks[0].tiemout" in err
    assert "did you mean 'timeout'" in err
    assert "tocsin.yaml:10" in err and "services.backend.checks[1].interval" in err


async def test_validate_names_a_missing_variable_without_printing_values(tmp_path: Path) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text("services:\n  api:\n    url: ${API_URL}\n"
                      "    checks: [{type: http, headers: {x-key: '${API_KEY}'}}]\n")
    code, _, err = await tocsin("validate", str(config), cwd=tmp_path,
                                env=_env(API_KEY="hunter2-very-secret"))
    assert code == 2
    assert "API_URL" in err
    assert "hunter2-very-secret" not in err


async def test_validate_refuses_an_unreadable_file(tmp_path: Path) -> None:
    code, _, err = await tocsin("validate", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert code == 2
    assert "missing.yaml" in err


# -- init -------------------------------------------------------------------

async def test_init_writes_a_config_that_validates_and_never_overwrites(tmp_path: Path) -> None:
    code, out, _ = await tocsin("init", cwd=tmp_path)
    assert code == 0 and "tocsin.yaml" in out
    text = (tmp_path / "tocsin.yaml").read_text()
    assert "#" in text  # annotated
    code, out, _ = await tocsin("validate", "tocsin.yaml", cwd=tmp_path)
    assert code == 0, out
    code, _, err = await tocsin("init", cwd=tmp_path)
    assert code == 1 and "exists" in err
    assert (tmp_path / "tocsin.yaml").read_text() == text


# -- check ------------------------------------------------------------------

async def test_check_exits_zero_when_every_check_passes(tmp_path: Path, target: Target) -> None:
    config = write_config(tmp_path / "tocsin.yaml", target.url)
    code, out, _ = await tocsin("check", "-c", str(config), cwd=tmp_path)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "LATENCY", "CODE", "MESSAGE"]
    assert lines[1].split()[:2] == ["backend-health", "ok"]
    assert "\x1b[" not in out  # plain output when not a terminal


async def test_check_exits_one_when_a_check_fails(tmp_path: Path, target: Target) -> None:
    extra = "      - {type: http, name: backend-down, path: /down}\n"
    config = write_config(tmp_path / "tocsin.yaml", target.url, extra_checks=extra)
    code, out, _ = await tocsin("check", "-c", str(config), cwd=tmp_path)
    assert code == 1
    assert re.search(r"backend-down\s+failing\s+\d+ ms\s+503", out), out
    code, out, _ = await tocsin("check", "-c", str(config), "backend-health", cwd=tmp_path)
    assert code == 0 and "backend-down" not in out


async def test_check_exits_two_on_config_error_or_unknown_name(tmp_path: Path,
                                                               target: Target) -> None:
    config = write_config(tmp_path / "tocsin.yaml", target.url)
    code, _, err = await tocsin("check", "-c", str(config), "backend-helth", cwd=tmp_path)
    assert code == 2 and "did you mean 'backend-health'" in err
    config.write_text("services: [\n")
    code, _, err = await tocsin("check", "-c", str(config), cwd=tmp_path)
    assert code == 2 and "tocsin.yaml" in err


# -- run --------------------------------------------------------------------

@asynccontextmanager
async def running_tocsin(cwd: Path, *args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process,
                                                                         str, list[str]]]:
    """Start ``tocsin run``; yield the process, its web URL and its growing log lines."""
    process = await asyncio.create_subprocess_exec(
        *TOCSIN, "run", *args, cwd=cwd, env=_env(), stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    url = ""
    while not url:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        assert line, "tocsin run exited early:\n" + "".join(log)
        log.append(line)
        if match := re.search(r"web: (http://\S+)", line):
            url = match.group(1)

    async def pump() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            log.append(raw.decode())

    reader = asyncio.create_task(pump())
    try:
        yield process, url, log
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await reader


async def _get_json(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def _wait_for(url: str, condition: object, within: float = 10.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        _, body = await _get_json(url)
        if callable(condition) and condition(body):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.1)


async def test_run_serves_health_and_latest_results_then_stops_cleanly(
        tmp_path: Path, target: Target) -> None:
    config = write_config(tmp_path / "tocsin.yaml", target.url)
    async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, log):
        status, health = await _get_json(f"{url}/health")
        assert status == 200 and health["status"] == "ok"
        body = await _wait_for(f"{url}/api/v1/checks",
                               lambda b: b["items"][0]["latest"] is not None)
        item = body["items"][0]  # type: ignore[index]
        assert item["name"] == "backend-health" and item["latest"]["status"] == "ok"
        assert item["latest"]["code"] == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    text = "".join(log)
    assert f"config: {config}" in text and "store: sqlite:///" in text
    assert "stopped" in text
    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        assert db.execute("SELECT COUNT(*) FROM raw_results").fetchone()[0] >= 1


async def test_sighup_reloads_and_keeps_the_last_good_config(tmp_path: Path,
                                                             target: Target) -> None:
    config = write_config(tmp_path / "tocsin.yaml", target.url)
    async with running_tocsin(tmp_path, "-c", str(config)) as (process, url, log):
        config.write_text(config.read_text() + "      - {type: http, tiemout: 1s}\n")
        process.send_signal(signal.SIGHUP)
        await _wait_until(lambda: "keeping the last good config" in "".join(log))
        assert "did you mean 'timeout'" in "".join(log)
        _, body = await _get_json(f"{url}/api/v1/checks")
        assert [i["name"] for i in body["items"]] == ["backend-health"]  # type: ignore[attr-defined]

        extra = "      - {type: http, name: backend-down, path: /down}\n"
        write_config(config, target.url, extra_checks=extra)
        process.send_signal(signal.SIGHUP)
        body = await _wait_for(
            f"{url}/api/v1/checks",
            lambda b: any(i["name"] == "backend-down" and i["latest"] for i in b["items"]))
        down = next(i for i in body["items"] if i["name"] == "backend-down")  # type: ignore
        assert down["latest"]["status"] == "failing"
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0


async def _wait_until(condition: object, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not (callable(condition) and condition()):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
async def test_run_without_a_config_uses_the_built_in_default(tmp_path: Path) -> None:
    if not _port_free(8080):
        pytest.skip("port 8080 is in use on this machine")
    async with running_tocsin(tmp_path) as (process, url, log):
        assert url == "http://127.0.0.1:8080"
        body = await _wait_for(f"{url}/api/v1/checks",
                               lambda b: any(i["latest"] for i in b["items"]), within=40)
        own = next(i for i in body["items"] if i["latest"])  # type: ignore[attr-defined]
        assert own["latest"]["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    text = "".join(log)
    assert "config: <built-in default>" in text
    assert f"store: sqlite:///{tmp_path / 'tocsin.db'}" in text
    assert (tmp_path / "tocsin.db").exists()


async def test_run_refuses_a_taken_port_clearly(tmp_path: Path, target: Target) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "tocsin.yaml", target.url, web_port=port)
        code, _, err = await tocsin("run", "-c", str(config), cwd=tmp_path, within=20)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
