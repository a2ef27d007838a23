"""CPU cost per result through ResultWriter into a file-backed SQLite store.

    .venv/bin/python tests/store/bench_result_writer.py [N]

Not collected by pytest. Counts process CPU time (every thread) from the first
submit to the end of flush(), so the SQLite inserts are included.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import ResultWriter, open_store


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate()
        results = [
            CheckResult(
                check=f"service-{i % 200} /health",
                status=CheckStatus.OK if i % 50 else CheckStatus.FAILING,
                started_at=1_790_000_000.0 + i * 0.01,
                latency_ms=12.5 + i % 97,
                code=200,
                message="" if i % 50 else "status 503, expected 200",
                values={"response_time": 12.5 + i % 97},
                timings={"connect": 0.4, "first_byte": 11.9},
            )
            for i in range(count)
        ]
        writer = ResultWriter(store)
        writer.start()
        cpu, wall = time.process_time(), time.perf_counter()
        for r in results:
            writer.submit(r)
        submitted_cpu = time.process_time() - cpu
        await writer.flush()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await writer.close()
        assert writer.written == count, writer.written
        store.close()
    print(
        f"{count} results, {writer.batches} batches: "
        f"{cpu / count * 1e6:.1f} µs CPU/result ({submitted_cpu / count * 1e6:.2f} in submit), "
        f"{wall / count * 1e6:.1f} µs wall/result"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
