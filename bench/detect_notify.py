"""Benchmark: from a target flipping to 500 to the SMTP server receiving the page.

Runs the real Tocsin (scheduler, HTTP check, alert engine, outbox, SMTP
channel, SQLite store) in this process against a local aiohttp target and a
local aiosmtpd server. Each run is its own service (one check, one incident),
flipped at a random moment, so runs of one configuration go concurrently.

Prints, per check interval and per ``confirm`` setting, the median and max of:

- flip → email: what a person waits;
- deciding check done → email: Tocsin's own latency once it knows (target:
  median under 250 ms). The rest of the wait is the interval (and the
  ``retry_interval`` re-check when confirming), by design.

    python bench/detect_notify.py --intervals 5 60 --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tocsin.probes import CheckResult
from tocsin.runtime import Runtime


class Inbox:
    """An aiosmtpd handler that notes when each page arrived (wall clock)."""

    def __init__(self, expected: int) -> None:
        self.arrived: dict[str, float] = {}  # service → time
        self.expected = expected
        self.loop = asyncio.get_running_loop()
        self.all_arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.time()
        text = (envelope.original_content or b"").decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("X-Tocsin-Kind:") and "firing" not in line:
                return "250 OK"
        for line in text.splitlines():
            if line.startswith("Subject:") and "FIRING" in line:
                service = line.split("svc", 1)[1].split(":", 1)[0]
                self.arrived.setdefault(f"svc{service}", now)
        if len(self.arrived) >= self.expected:
            self.loop.call_soon_threadsafe(self.all_arrived.set)  # the server has its own loop
        return "250 OK"


def config(tmp: Path, target_port: int, smtp_port: int, runs: int, interval: int,
           confirm: int) -> Path:
    services = "\n".join(
        f"  svc{i}:\n    url: http://127.0.0.1:{target_port}\n    checks:\n"
        f"      - {{type: http, name: svc{i}:http, path: /s/{i}, interval: {interval}s,"
        f" timeout: 2s, alerts: [{{when: down, severity: P1, confirm: {confirm},"
        f" retry_interval: 2s}}]}}"
        for i in range(runs))
    path = tmp / f"bench-{interval}-{confirm}.yaml"
    path.write_text(f"""\
storage: sqlite:///{tmp / f'bench-{interval}-{confirm}.db'}
web: {{enabled: false}}
channels:
  mail: {{type: smtp, host: 127.0.0.1, port: {smtp_port}, security: none,
          from: tocsin@example.com, to: [oncall@example.com]}}
policies:
  P1: {{channels: [mail], repeat: 1h}}
services:
{services}
""")
    return path


async def one_configuration(tmp: Path, runs: int, interval: int,
                            confirm: int) -> tuple[list[float], list[float]]:
    broken: dict[str, float] = {}  # path index → when it flipped to 500 (wall clock)

    async def handler(request: web.Request) -> web.Response:
        index = request.match_info["index"]
        return web.Response(status=500 if index in broken else 200, text="x")

    app = web.Application()
    app.router.add_get("/s/{index}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target_port = runner.addresses[0][1]

    inbox = Inbox(runs)
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()

    runtime = Runtime(config(tmp, target_port, smtp_port, runs, interval, confirm))
    decided: dict[str, float] = {}  # service → when the deciding check completed

    def note_decision(result: CheckResult) -> None:
        service = result.check.split(":", 1)[0]
        engine = runtime.engine
        alert = engine.alerts.get(f"{result.check}:down") if engine else None
        if alert is not None and alert.state.is_open and service not in decided:
            decided[service] = result.started_at + (result.latency_ms or 0) / 1000

    task = asyncio.create_task(runtime.run())
    await runtime.ready.wait()
    assert runtime.scheduler is not None
    runtime.scheduler.add_sink(note_decision)
    await asyncio.sleep(interval + 1)  # every check has run once and is healthy

    loop = asyncio.get_running_loop()
    for i in range(runs):
        loop.call_later(random.uniform(0, interval), _flip, broken, str(i))
    try:
        await asyncio.wait_for(inbox.all_arrived.wait(), 3 * interval + 30)
    except TimeoutError:
        print(f"    only {len(inbox.arrived)} of {runs} pages arrived")

    to_email, after_decision = [], []
    for service, arrived in inbox.arrived.items():
        to_email.append(arrived - broken[service.removeprefix("svc")])
        if service in decided:
            after_decision.append(arrived - decided[service])
    runtime.request_stop()
    await task
    smtp.stop()
    await runner.cleanup()
    return to_email, after_decision


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flip(broken: dict[str, float], index: str) -> None:
    broken[index] = time.time()


def summary(values: list[float]) -> str:
    if not values:
        return "no data"
    return f"median {statistics.median(values) * 1000:8.0f} ms   max {max(values) * 1000:8.0f} ms"


async def main(intervals: list[int], runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for interval in intervals:
            for confirm in (0, 1):
                to_email, after = await one_configuration(Path(tmp), runs, interval, confirm)
                print(f"interval {interval:>3}s confirm {confirm}  runs {len(to_email):>2}/{runs}")
                print(f"    flip → email:             {summary(to_email)}")
                print(f"    deciding check → email:   {summary(after)}")


def parse() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, nargs="+", default=[5, 60])
    parser.add_argument("--runs", type=int, default=10)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    import uvloop

    uvloop.run(main(arguments.intervals, arguments.runs))
