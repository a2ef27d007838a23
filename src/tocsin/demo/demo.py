"""``tocsin demo``: the product brief's example, end to end, on this machine alone.

Starts the stand-ins (:mod:`tocsin.demo.standins`), writes a config for them to a
temporary directory, runs Tocsin in this process, prints where to look, then
breaks the backend so the whole loop shows: the P1 email, the restart through
the (stand-in) Render API, the verification and the RECOVERED email.
Everything listens on 127.0.0.1 and nothing is sent anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tocsin.demo.standins import HOST, DemoBackend, DemoFrontend, DemoRender, MailCatcher
from tocsin.runtime import Runtime

KEY_ENV = "RENDER_API_KEY"
API_PATHS = (
    ("/api/v1/checks", "every check's latest result"),
    ("/api/v1/alerts", "alerts and their states"),
    ("/api/v1/remediation/attempts", "the remediation audit log"),
    ("/api/v1/deliveries", "every notification and how it was delivered"),
)


@dataclass(frozen=True)
class DemoTimings:
    """How fast the demo moves; the tests make it faster."""

    break_after: float = 10.0    # seconds after start before the backend breaks
    check_interval: float = 5.0  # the backend's health check
    verify_after: float = 10.0   # the restart policy's re-check
    restart_time: float = 3.0    # how long the backend takes to come back after a restart


def write_config(directory: Path, *, backend: str, frontend: str, render: str, smtp_port: int,
                 timings: DemoTimings) -> Path:
    """The brief's example pointed at the stand-ins, with demo timings; returns its path."""
    database = directory / "homeverse_demo.db"
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("CREATE TABLE IF NOT EXISTS activities (id INTEGER PRIMARY KEY, "
                           "kind TEXT)")
        connection.executemany("INSERT INTO activities (kind) VALUES (?)",
                               [("login",), ("application",), ("project",)])
    interval = f"{timings.check_interval:g}s"
    path = directory / "tocsin.yaml"
    path.write_text(f"""\
# Written by `tocsin demo`: the example of PRODUCT.md, pointed at local stand-ins.
storage: sqlite:///{directory / 'tocsin.db'}
defaults: {{interval: 10s, timeout: 3s}}
web: {{enabled: true, host: {HOST}, port: 0}}
platforms:
  render: {{type: render, api_key: "${{{KEY_ENV}}}", base_url: "{render}"}}
services:
  backend:
    url: {backend}
    platform: {{name: render, service_id: srv-backend-id}}
    labels: {{team: api}}
    checks:
      - type: http
        path: /health
        interval: {interval}
        expect: {{status: 200}}
        alerts:
          - {{when: down, severity: P1, retry_interval: 1s, remediate: restart}}
          - {{when: "response_time > 1000ms", severity: P2}}
      - type: deploy
        interval: 30s
        alerts: [{{when: failed, severity: P2, remediate: rollback}}]
      - type: error_rate
        requests: [GET /api/v1/auth/login, GET /api/v1/applicants, GET /api/v1/projects]
        alerts: [{{when: "error_rate > 5%", severity: P2}}]
  frontend:
    url: {frontend}
    platform: {{name: render, service_id: srv-frontend-id}}
    checks:
      - {{type: http, path: /, interval: {interval},
          alerts: [{{when: down, severity: P1, remediate: restart}}]}}
databases:
  demo:
    url: sqlite:///{database}
    query: SELECT COUNT(*) FROM activities
    tables: 5
    alerts: [{{when: down, severity: P1}}]
channels:
  email: {{type: smtp, host: {HOST}, port: {smtp_port}, security: none,
          from: tocsin-demo@example.com, to: [oncall@example.com]}}
policies:
  P1: {{channels: [email], priority: high, repeat: 15m, escalate_after: 5m}}
  P2: {{channels: [email], repeat: 30m}}
  P3: {{channels: [email], repeat: 2h}}
inhibit:
  - source: {{service: backend, alertname: down}}
    target: ["service=frontend", "alertname!=down"]
remediation:
  restart: {{action: platform.restart, verify_after: {timings.verify_after:g}s,
            max_attempts: 3, per: 1h}}
  rollback: {{action: platform.rollback, verify_after: 120s, max_attempts: 1, per: 1h}}
""")
    return path


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


async def run_demo(*, duration: float | None = None, break_backend: bool = True,
                   timings: DemoTimings = DemoTimings(),
                   out: Callable[[str], None] = lambda text: print(text, flush=True)) -> None:
    """Run the demo until ``duration`` seconds pass (None: until SIGINT/SIGTERM)."""
    started = time.monotonic()

    def say(text: str) -> None:
        out(f"[{time.monotonic() - started:5.1f} s] {text}")

    def mail(subject: str) -> None:
        say(f"mail: {subject}")
        if "RECOVERED" in subject:
            say("that is the whole loop: see the audit log at "
                f"{api}/api/v1/remediation/attempts (Ctrl-C stops the demo)")

    api = ""
    backend = DemoBackend(restart_time=timings.restart_time, notice=say)
    frontend = DemoFrontend()
    render = DemoRender(notice=say)
    catcher = MailCatcher(on_message=mail)
    render.add_service("srv-backend-id", backend.restart)
    render.add_service("srv-frontend-id")
    standins = (backend, frontend, render)
    with tempfile.TemporaryDirectory(prefix="tocsin-demo-") as workdir, \
            _environment(KEY_ENV, render.api_key):
        try:
            for site in standins:
                await site.start()
            await catcher.start()
            config = write_config(Path(workdir), backend=backend.url, frontend=frontend.url,
                                  render=render.url, smtp_port=catcher.port, timings=timings)
            runtime = Runtime(config)
            running = asyncio.create_task(runtime.run())
            ready = asyncio.create_task(runtime.ready.wait())
            await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                await running  # it failed to start: raise why
                return
            assert runtime.web_address is not None
            api = "http://{}:{}".format(*runtime.web_address)
            for line in guide(api, backend=backend.url, frontend=frontend.url,
                              render=render.url, smtp_port=catcher.port, config=config,
                              break_backend=break_backend, timings=timings):
                out(line)
            if break_backend:
                def break_now() -> None:
                    backend.break_()
                    say("backend: BROKEN now (/health and /api/v1/... answer 503)")

                backend.later(max(0.0, timings.break_after - (time.monotonic() - started)),
                              break_now)
            if duration is not None:
                asyncio.get_running_loop().call_later(
                    max(0.0, duration - (time.monotonic() - started)), runtime.request_stop)
            await running
            say("demo stopped")
        finally:
            await catcher.stop()
            for site in reversed(standins):
                await site.stop()


def guide(api: str, *, backend: str, frontend: str, render: str, smtp_port: int, config: Path,
          break_backend: bool, timings: DemoTimings) -> list[str]:
    """What the demo prints once everything is up."""
    lines = [
        "Tocsin demo: everything runs on this machine (127.0.0.1) and sends nothing elsewhere.",
        "",
        f"  backend   {backend}   stand-in API using tocsin.health (/health, /api/v1/...)",
        f"  frontend  {frontend}",
        f"  Render    {render}   stand-in Render API (a generated demo key)",
        f"  mail      smtp://{HOST}:{smtp_port}   catcher: each email's subject is printed below",
        f"  Tocsin    {api}   config: {config}",
        "",
        "There is no dashboard yet; watch the JSON API instead (or `tocsin alerts --url "
        f"{api}`, `tocsin remediation log --url {api}`):",
    ]
    lines += [f"  {api}{path:<30} {what}" for path, what in API_PATHS]
    lines.append("")
    if break_backend:
        lines += [
            f"In {timings.break_after:g} s the backend breaks. Its health check (every "
            f"{timings.check_interval:g} s) finds it down, the P1 alert fires and is emailed,",
            "the `restart` remediation calls the Render API's restart, the backend comes back "
            f"{timings.restart_time:g} s later, Tocsin re-checks it after "
            f"{timings.verify_after:g} s",
            "and emails RECOVERED. Expect it all within about a minute. Ctrl-C stops the demo.",
        ]
    else:
        lines.append("--no-break: the backend stays healthy and every check stays green. "
                     "Ctrl-C stops the demo.")
    lines.append("")
    return lines
