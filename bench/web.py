"""Benchmark: the dashboard, the status page and the overview API over 5,000 checks.

History is written through the store's real write path (``write_results``,
which keeps the 5-minute, hourly and daily rollups), one result per check per
``--step`` seconds over ``--days`` days, before Tocsin starts. Then a real
Runtime serves the web app while its checks run against a local target, and
this prints, over loopback HTTP:

* the time to the first byte-complete answer of ``/`` and ``/status``, cold (the
  first request: caches empty) and warm (median of the following ones);
* the p50/p95 of ``GET /api/v1/overview``;
* the same for a baseline in the same run: a static page of the same size
  served by the same server, and the ratios to it;
* with Debian's chromium installed, the browser's load time (navigation start
  to the load event) of the dashboard, the status page and the baseline.

Targets: under 500 ms of server time, under 1.5 s to a rendered page.

    python bench/web.py --checks 5000 --days 30        # a few minutes to generate
    python bench/web.py --checks 5000 --days 3         # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from tocsin.probes import CheckResult, CheckStatus
from tocsin.runtime import Runtime
from tocsin.store import open_store

CHROMIUM = Path("/usr/bin/chromium")
TARGET_SERVER_MS = 500.0
TARGET_BROWSER_MS = 1500.0


def config_text(storage: str, target: str, checks: int, services: int, interval: int) -> str:
    lines = [f"storage: {storage}", "web: {port: 0}", "scheduler: {jitter: true}",
             f"defaults: {{interval: {interval}s, timeout: 5s}}", "services:"]
    per_service = -(-checks // services)
    for s in range(services):
        lines += [f"  svc-{s:03d}:", f"    url: {target}", "    checks:"]
        for c in range(s * per_service, min(checks, (s + 1) * per_service)):
            path = "/down" if c % 97 == 0 else "/health"  # ~1 % of the checks are down
            lines.append(f"      - {{type: http, name: check-{c:05d}, path: {path}}}")
    return "\n".join(lines) + "\n"


def generate_history(storage: str, checks: int, days: float, step: int) -> int:
    """Write ``days`` of results for every check through ``Store.write_results``."""
    store = open_store(storage)
    store.migrate()
    rng = random.Random(7)
    names = [f"check-{c:05d}" for c in range(checks)]
    end = time.time() - 60
    start = end - days * 86400
    written = 0
    batch: list[CheckResult] = []
    at = start
    began = time.monotonic()
    while at < end:
        for name in names:
            failing = rng.random() < 0.004
            batch.append(CheckResult(name, CheckStatus.FAILING if failing else CheckStatus.OK,
                                     at + rng.random() * step,
                                     latency_ms=rng.lognormvariate(3.5, 0.6), code=200))
        if len(batch) >= 1000:  # about what the ResultWriter writes at once
            store.write_results(batch)
            written += len(batch)
            batch = []
            done = (at - start) / (end - start)
            print(f"\r  history: {done:6.1%} ({written:,} results, "
                  f"{time.monotonic() - began:.0f} s)", end="", flush=True)
        at += step
    if batch:
        store.write_results(batch)
        written += len(batch)
    store.close()
    print(f"\r  history: {written:,} results in {time.monotonic() - began:.0f} s"
          + " " * 20)
    return written


async def start_target() -> tuple[web.AppRunner, str]:
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def down(request: web.Request) -> web.Response:
        return web.json_response({"status": "down"}, status=503)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/down", down)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    began = time.perf_counter()
    async with http.get(url) as response:
        body = await response.read()
        assert response.status == 200, (url, response.status)
    return (time.perf_counter() - began) * 1000, len(body)


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def server_times(http: aiohttp.ClientSession, base: str, app: FastAPI,
                       repeat: int) -> dict[str, Any]:
    """Right after start, after the warm-up, when the cache has expired, and warm."""
    answers: dict[str, Any] = {}
    first = {"dashboard": (await timed_get(http, base + "/"))[0],
             "status page": (await timed_get(http, base + "/status"))[0]}
    began = time.monotonic()
    await asyncio.to_thread(app.state.status_board.daily.warmed.wait, 600)
    answers["warm-up left after the first requests"] = (time.monotonic() - began) * 1000
    for name, path in (("dashboard", "/"), ("status page", "/status")):
        app.state.status_board._view = None  # expired: the next request builds it again
        rebuilt, size = await timed_get(http, base + path)
        warm = [(await timed_get(http, base + path))[0] for _ in range(repeat)]
        answers[name] = {"first": first[name], "rebuilt": rebuilt,
                         "warm": statistics.median(warm), "size": size}
    overview = [(await timed_get(http, base + "/api/v1/overview"))[0] for _ in range(200)]
    answers["overview API"] = {"p50": ms(overview, 0.5), "p95": ms(overview, 0.95)}
    return answers


async def browser_times(base: str, chromium: bool) -> dict[str, float] | None:
    if not chromium:
        return None
    from playwright.async_api import async_playwright

    times: dict[str, float] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                   args=["--no-sandbox", "--disable-gpu"])
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        for name, path in (("baseline", "/bench/baseline"), ("dashboard", "/"),
                           ("status page", "/status"), ("baseline (again)", "/bench/baseline")):
            await page.goto(base + path, wait_until="load")
            times[name] = await page.evaluate(
                "(() => { const n = performance.getEntriesByType('navigation')[0];"
                " return n.loadEventEnd - n.startTime; })()")
        await browser.close()
    return times


async def run(args: argparse.Namespace) -> None:
    os.environ.pop("TOCSIN_ADMIN_PASSWORD_HASH", None)  # loopback may read the pages
    os.environ.pop("TOCSIN_API_TOKEN", None)
    folder = Path(tempfile.mkdtemp(prefix="tocsin-bench-web-"))
    database = args.db or folder / "tocsin.db"
    storage = f"sqlite:///{database}"
    print(f"{args.checks:,} checks in {args.services} services, {args.days:g} days of "
          f"history, one result per check per {args.step} s")
    if args.db is not None and args.db.exists():
        print(f"  history: reusing {args.db}")
    else:
        await asyncio.to_thread(generate_history, storage, args.checks, args.days, args.step)
    runner, target = await start_target()
    config = folder / "tocsin.yaml"
    config.write_text(config_text(storage, target, args.checks, args.services, args.interval))
    runtime = Runtime(config)
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(runtime.ready.wait(), 120)
        assert runtime.web_address is not None and runtime.web is not None
        base = "http://{}:{}".format(*runtime.web_address)
        async with aiohttp.ClientSession() as http:
            app: FastAPI = runtime.web._server.config.app  # type: ignore[union-attr]
            results = await server_times(http, base, app, args.repeat)
            # The baseline: a static page as large as the dashboard, from the same server.
            full = results["dashboard"]["size"]
            baseline_body = ("<!doctype html><title>baseline</title><pre>"
                             + "x" * max(0, full - 60) + "</pre>")

            async def baseline() -> HTMLResponse:
                return HTMLResponse(baseline_body)

            app.add_api_route("/bench/baseline", baseline)
            floor = [(await timed_get(http, base + "/bench/baseline"))[0]
                     for _ in range(args.repeat)]
        browser = await browser_times(base, args.chromium)
    finally:
        runtime.request_stop()
        await asyncio.wait_for(task, 120)
        await runner.cleanup()

    base_ms = statistics.median(floor)
    print(f"\nserver time over loopback HTTP (target < {TARGET_SERVER_MS:.0f} ms):")
    print(f"  {'baseline (static, same size)':30} {base_ms:8.1f} ms")
    for name in ("dashboard", "status page"):
        r = results[name]
        print(f"  {name + ' right after start':30} {r['first']:8.1f} ms   "
              f"({r['size'] / 1024:.0f} KiB)")
        print(f"  {name + ' rebuilt (cache expired)':30} {r['rebuilt']:8.1f} ms")
        print(f"  {name + ' warm (median)':30} {r['warm']:8.1f} ms   "
              f"× {r['warm'] / base_ms:.1f} the baseline")
    print(f"  {'status warm-up still running':30} "
          f"{results['warm-up left after the first requests']:8.1f} ms after them")
    api = results["overview API"]
    print(f"  {'overview API p50':30} {api['p50']:8.1f} ms")
    print(f"  {'overview API p95':30} {api['p95']:8.1f} ms   × {api['p95'] / base_ms:.1f} "
          "the baseline")
    if browser is None:
        print("\nbrowser: skipped (no /usr/bin/chromium)")
        return
    print(f"\nbrowser load time, navigation start to load (target < {TARGET_BROWSER_MS:.0f} ms):")
    floor_browser = min(browser["baseline"], browser["baseline (again)"])
    for name, value in browser.items():
        print(f"  {name:30} {value:8.1f} ms   × {value / floor_browser:.1f} the baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--step", type=int, default=3600,
                        help="seconds between two generated results of a check")
    parser.add_argument("--interval", type=int, default=300,
                        help="the live checks' interval in seconds")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--db", type=Path, default=None,
                        help="keep the generated history in this SQLite file and reuse it")
    args = parser.parse_args()
    args.chromium = CHROMIUM.exists()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
