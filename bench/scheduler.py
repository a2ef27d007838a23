"""Benchmark: the real config, scheduler, HTTP check and SQLite store on N checks.

A local target server runs in a separate process (its CPU is not counted).
The benchmark first measures the floor in this same run — a bare aiohttp GET
on a fresh loopback connection — then runs Tocsin's pipeline for a fixed time
and prints checks/s, schedule lag p50/p99/max, CPU ms per check (process
user+sys ÷ checks, the store's writer thread included), its ratio to the
floor, peak RSS and rows written.

    python bench/scheduler.py --checks 10000 --interval 10 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import resource
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from tocsin.alerting.clock import SystemClock
from tocsin.alerting.pipeline import Alerting
from tocsin.config import load_config_text
from tocsin.probes import CheckResult, ProbeContext
from tocsin.runtime import GIL_SWITCH_INTERVAL, build_probes
from tocsin.scheduler import Scheduler
from tocsin.store import ResultWriter, open_store

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
    b"Connection: close\r\n\r\n{\"status\":\"ok\"}"
)


class _Target(asyncio.Protocol):
    """A minimal HTTP/1.1 server: answers every request with a small JSON body."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]
            self.transport.close()


def _serve_target(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Target, sock=sock, backlog=4096)
        await server.serve_forever()

    uvloop.run(main())


def start_target() -> tuple[multiprocessing.Process, int]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    process = multiprocessing.Process(target=_serve_target, args=(sock,), daemon=True)
    process.start()
    return process, sock.getsockname()[1]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bare_get_floor(url: str, rate: float, seconds: float) -> float:
    """CPU ms per bare aiohttp GET on a fresh connection, paced at ``rate`` per second.

    Paced like the scheduler paces checks (not a burst, where the event loop
    amortises its wake-ups over many requests), so the ratio is like for like.
    """
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks: set[asyncio.Task[None]] = set()

        async def one() -> None:
            async with session.get(url) as response:
                await response.read()

        def launch() -> None:
            task = loop.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        requests = int(rate * seconds)
        start = loop.time() + 0.1
        before = cpu_seconds()
        for i in range(requests):
            loop.call_at(start + i / rate, launch)
        await asyncio.sleep(seconds + 0.2)
        await asyncio.gather(*tasks)
        return (cpu_seconds() - before) * 1000 / requests


RULES = ', alerts: [{when: down, severity: P1}, {when: "response_time > 1000ms", severity: P2}]'


def make_config(port: int, checks: int, interval: float, db: Path, alerts: bool) -> str:
    lines = [
        f"storage: sqlite:///{db}",
        "web: {enabled: false}",
        "scheduler: {concurrency: 1000}",
        f"defaults: {{interval: {interval:g}s, timeout: 5s}}",
        "services:",
        "  target:",
        f"    url: http://127.0.0.1:{port}",
        "    checks:",
    ]
    lines += [
        f"      - {{type: http, name: c{i}, path: /health/{i}, expect: {{status: 200}}"
        f"{RULES if alerts else ''}}}"
        for i in range(checks)
    ]
    return "\n".join(lines) + "\n"


async def run_pipeline(port: int, checks: int, interval: float, duration: float,
                       db: Path, alerts: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    loaded = load_config_text(make_config(port, checks, interval, db, alerts), "<bench>")
    config_s = time.perf_counter() - started

    store = open_store(loaded.config.storage)
    store.migrate()
    writer = ResultWriter(store)
    writer.start()
    context = ProbeContext()
    not_ok: list[str] = []

    def count_failures(result: CheckResult) -> None:
        if not result.status.is_ok:
            not_ok.append(result.message)

    scheduler = Scheduler([writer.submit, count_failures],
                          concurrency=loaded.config.scheduler.concurrency)
    alerting = Alerting(loaded, store, SystemClock(), recheck=scheduler.run_soon)
    if alerts:  # the alert engine evaluates two rules on every result
        await alerting.start()
        scheduler.add_sink(alerting.engine.observe)
    scheduler.set_probes(build_probes(loaded.checks, context))

    gc.freeze()  # as the runtime does once started: see Runtime._start
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # as the runtime does
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    scheduler.start()
    await asyncio.sleep(duration)
    await scheduler.stop()
    await writer.flush()
    cpu = cpu_seconds() - cpu_before
    wall = time.perf_counter() - wall_before
    await writer.close()
    if alerts:
        await alerting.stop()
    await context.close()
    store.close()

    lag = scheduler.stats.lag()
    runs = scheduler.stats.runs
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT COUNT(*) FROM raw_results").fetchone()[0]
    return {
        "config_s": config_s, "runs": runs, "checks_per_s": runs / wall,
        "expected_per_s": checks / interval,
        "lag_p50_ms": lag.p50 * 1000, "lag_p99_ms": lag.p99 * 1000, "lag_max_ms": lag.max * 1000,
        "cpu_ms_per_check": cpu * 1000 / max(runs, 1), "rows": rows,
        "skipped": scheduler.stats.skipped_overlap, "missed": scheduler.stats.missed,
        "not_ok": len(not_ok), "first_not_ok": not_ok[0] if not_ok else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--alerts", action="store_true",
                        help="give every check two alert rules (down, response time)")
    args = parser.parse_args()

    target, port = start_target()
    try:
        rate = args.checks / args.interval
        floor = uvloop.run(bare_get_floor(f"http://127.0.0.1:{port}/health", rate,
                                          max(3.0, 3000 / rate)))
        with tempfile.TemporaryDirectory() as tmp:
            figures = uvloop.run(run_pipeline(port, args.checks, args.interval, args.duration,
                                              Path(tmp) / "bench.db", args.alerts))
    finally:
        target.terminate()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"checks={args.checks} interval={args.interval:g}s duration={args.duration:g}s "
          f"alert rules={'2 per check' if args.alerts else 'none'} cpus={os.cpu_count()}")
    print(f"config load:        {figures['config_s'] * 1000:.0f} ms")
    print(f"checks/s achieved:  {figures['checks_per_s']:.1f} "
          f"(expected {figures['expected_per_s']:.1f})")
    print(f"schedule lag:       p50 {figures['lag_p50_ms']:.1f} ms, "
          f"p99 {figures['lag_p99_ms']:.1f} ms, max {figures['lag_max_ms']:.1f} ms")
    print(f"CPU per check:      {figures['cpu_ms_per_check']:.3f} ms "
          f"(bare aiohttp GET at the same rate {floor:.3f} ms; ratio "
          f"{figures['cpu_ms_per_check'] / floor:.2f}x)")
    print(f"peak RSS:           {peak_rss_mb:.0f} MB")
    print(f"rows written:       {figures['rows']} (runs {figures['runs']}, "
          f"skipped {figures['skipped']}, missed {figures['missed']}, "
          f"not ok {figures['not_ok']} {figures['first_not_ok']})")


if __name__ == "__main__":
    main()
