"""Benchmark: ``GET /metrics`` of a real ``Runtime`` with N checks, each with a result.

Every check is an ``http`` check of a closed loopback port at a long interval,
so each has run once (a refused connection) before the scrapes start. Prints
the scrape time (min, median, max over R scrapes), the body size, and the
longest stall of the event loop during the scrapes (the rendering runs in a
worker thread; the snapshot is taken on the loop). The client is ``curl``.

    python bench/metrics_scrape.py --checks 10000 --scrapes 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from tocsin.runtime import Runtime


def write_config(directory: Path, checks: int) -> Path:
    lines = [f"storage: sqlite:///{directory / 'tocsin.db'}", "web: {port: 0}",
             "defaults: {interval: 1h, timeout: 2s}", "scheduler: {jitter: false}",
             "services:"]
    per_service = 100
    for service in range(checks // per_service):
        lines += [f"  svc{service}:", "    url: http://127.0.0.1:9", "    checks:"]
        lines += [f"      - {{type: http, name: c{service}-{n}, path: /health}}"
                  for n in range(per_service)]
    path = directory / "tocsin.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def watch_loop(stalls: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        stalls.append(time.perf_counter() - before - 0.001)


async def main(checks: int, scrapes: int) -> None:
    os.environ.pop("TOCSIN_API_TOKEN", None)
    os.environ.pop("TOCSIN_ADMIN_PASSWORD_HASH", None)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(write_config(Path(tmp), checks))
        task = asyncio.create_task(runtime.run())
        await asyncio.wait_for(runtime.ready.wait(), 120)
        assert runtime.web_address is not None
        url = "http://{}:{}/metrics".format(*runtime.web_address)
        deadline = time.monotonic() + 120
        while sum(runtime.latest.get(s.name) is not None for s in runtime.checks) < checks:
            assert time.monotonic() < deadline, "checks did not all run"
            await asyncio.sleep(0.5)
        times: list[float] = []
        stalls: list[float] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_loop(stalls, stop))
        for _ in range(scrapes):
            # The client is another process, so that its parsing does not stall this loop.
            started = time.perf_counter()
            curl = await asyncio.create_subprocess_exec(
                "curl", "-sf", url, stdout=asyncio.subprocess.PIPE)
            body, _ = await curl.communicate()
            assert curl.returncode == 0, "the scrape failed"
            times.append(time.perf_counter() - started)
        stop.set()
        await watcher
        runtime.request_stop()
        await task
    print(f"{checks} checks, {scrapes} scrapes: min {min(times) * 1000:.0f} ms, "
          f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
          f"body {len(body) / 1e6:.1f} MB; longest loop stall {max(stalls) * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.checks, arguments.scrapes))
