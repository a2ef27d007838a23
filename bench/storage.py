"""Benchmark: the result store's ingest rate, size on disk and rollup queries.

Prints, for one backend:

* results ingested per second through ``Store.write_results`` (raw rows and
  rollups in one transaction, batches of 500 from ``--ingest-checks`` checks
  in time order, ending with the write of the rollups held in memory),
  against a baseline measured in the same run: a bare
  executemany of the same raw rows into a plain table without rollups;
* bytes on disk per raw result;
* the database size after ``--checks`` checks × ``--days`` days at a 60 s
  interval under the default retention: raw rows generated directly and
  stored through the write path's raw insert and rollups, pruned every two
  simulated hours;
* the time to answer 30-day and 90-day uptime + p95 for ``--query-checks``
  checks (the rollups of the simulated checks copied under new check ids).

    python bench/storage.py --backend sqlite
    python bench/storage.py --backend postgresql            # a throwaway server
    python bench/storage.py --backend postgresql --dsn postgresql://u:p@host/db
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)

from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import Store, open_store
from tocsin.store.rollups_fold import DAY
from tocsin.store.schema import checks, raw_results, rollup_days, rollup_hours
from tocsin.store.sql import SQLStore

INTERVAL = 60
RAW_DAYS = 14
NOW = 1_790_000_000.0 - 1_790_000_000.0 % DAY + 13 * 3600 + 1234.5  # mid-afternoon

_plain = MetaData()
plain_results = Table(  # the baseline: the same columns, no key, no rollups
    "plain_results", _plain,
    Column("check_id", Integer), Column("started_at", Double), Column("status", SmallInteger),
    Column("latency_us", BigInteger), Column("code", Integer), Column("message", Text),
    Column("details", Text),
)


def latency_ms(rng: random.Random) -> float:
    return round(rng.lognormvariate(4.4, 0.4), 3)  # ~80 ms, long right tail


def status(rng: random.Random) -> CheckStatus:
    roll = rng.random()
    return CheckStatus.OK if roll > 0.01 else CheckStatus.FAILING if roll > 0.002 else (
        CheckStatus.ERROR)


def results_in_time_order(checks_: int, start: float, count: int,
                          rng: random.Random) -> Iterator[CheckResult]:
    """``count`` results of ``checks_`` checks, every check once per INTERVAL, oldest first."""
    spread = INTERVAL / checks_
    for i in range(count):
        check = i % checks_
        at = start + (i // checks_) * INTERVAL + check * spread
        yield CheckResult(check=f"check-{check}", status=status(rng), started_at=at,
                          latency_ms=latency_ms(rng), code=200)


def measure_ingest(store: SQLStore, checks_: int, total: int) -> tuple[float, float]:
    """(results/s through write_results, results/s of the bare executemany baseline)."""
    rng = random.Random(1)
    results = list(results_in_time_order(checks_, NOW - 7 * DAY, total, rng))
    batches = [results[i:i + 500] for i in range(0, total, 500)]
    store.write_results(batches[0])  # registers the checks; not timed
    started = time.perf_counter()
    for batch in batches[1:]:
        store.write_results(batch)
    store.summary(["check-0"], NOW, NOW)  # writes the rollups held in memory
    tocsin_rate = (total - 500) / (time.perf_counter() - started)

    ids = {f"check-{i}": i + 1 for i in range(checks_)}
    rows = [{"check_id": ids[r.check], "started_at": r.started_at,
             "status": 0 if r.status is CheckStatus.OK else 1,
             "latency_us": round((r.latency_ms or 0) * 1000), "code": r.code,
             "message": None, "details": None} for r in results[500:]]
    _plain.create_all(store.engine)
    started = time.perf_counter()
    for i in range(0, len(rows), 500):
        with store.engine.begin() as conn:
            conn.execute(insert(plain_results), rows[i:i + 500])
    baseline_rate = len(rows) / (time.perf_counter() - started)
    return tocsin_rate, baseline_rate


def simulate_history(store: SQLStore, checks_: int, days: int) -> int:
    """``days`` days of ``checks_`` checks at INTERVAL through the rollup write path.

    The raw rows are generated directly (no CheckResult objects, no latest-result
    upsert) and stored with ``SQLStore._store_results`` in batches of 5,000 in
    time order — the raw insert and rollups of ``write_results`` — and the
    default retention is applied after every simulated day. Returns raw rows kept.
    """
    rng = random.Random(2)
    ids = _register(store, [f"sim-{i}" for i in range(checks_)])
    offsets = [rng.random() * INTERVAL for _ in ids]
    first_day = int(NOW // DAY) - days + 1
    pruned_at = 0.0
    for day in range(first_day, first_day + days):
        rows: list[dict[str, Any]] = []
        for step in range(DAY // INTERVAL):
            base = day * DAY + step * INTERVAL
            if base >= NOW:
                break
            for check_id, offset in zip(ids, offsets, strict=True):
                roll = rng.random()
                rows.append({"check_id": check_id, "started_at": base + offset,
                             "status": 0 if roll > 0.01 else 1 if roll > 0.002 else 2,
                             "latency_us": round(rng.lognormvariate(4.4, 0.4) * 1000),
                             "code": 200, "message": None, "details": None})
        for i in range(0, len(rows), 5000):
            batch = rows[i:i + 5000]
            with store.rollup_lock, store.engine.begin() as conn:
                store._store_results(conn, batch)
            # Tocsin prunes every 10 minutes: prune as often (in simulated time)
            # as costs little, so freed pages are reused as they would be.
            if batch[-1]["started_at"] - pruned_at >= 2 * 3600:
                pruned_at = batch[-1]["started_at"]
                store.prune(pruned_at, batch=50_000)
    store.prune(NOW, batch=50_000)
    with store.engine.begin() as conn:
        return int(conn.scalar(select(func.count()).select_from(raw_results)) or 0)


def _register(store: SQLStore, names: list[str]) -> list[int]:
    with store.engine.begin() as conn:
        conn.execute(insert(checks), [{"name": n, "created_at": 0.0} for n in names])
        return list(conn.scalars(select(checks.c.id).where(checks.c.name.in_(names))
                                 .order_by(checks.c.id)))


def copy_rollups(store: SQLStore, source: int, wanted: int) -> list[str]:
    """Make ``wanted`` checks whose rollups are copies of the ``source`` simulated ones."""
    names = [f"query-{i}" for i in range(wanted)]
    new_ids = _register(store, names)
    sim_ids = _register_lookup(store, [f"sim-{i}" for i in range(source)])
    with store.engine.begin() as conn:
        for new_id, sim_id in zip(new_ids, [sim_ids[i % source] for i in range(wanted)],
                                  strict=True):
            for table in (rollup_hours, rollup_days):
                columns = [c.name for c in table.c if c.name != "check_id"]
                listed = ", ".join(columns)
                conn.execute(text(
                    f"INSERT INTO {table.name} (check_id, {listed}) SELECT :new, {listed} "
                    f"FROM {table.name} WHERE check_id = :old"), {"new": new_id, "old": sim_id})
    return names


def _register_lookup(store: SQLStore, names: list[str]) -> list[int]:
    with store.engine.begin() as conn:
        found = {name: id_ for name, id_ in conn.execute(
            select(checks.c.name, checks.c.id).where(checks.c.name.in_(names)))}
    return [found[n] for n in names]


def time_summary(store: Store, names: list[str], days: int) -> tuple[float, float]:
    """(median seconds over 5 runs, mean p95 ms) of uptime + p95 over the last ``days``."""
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        answer = store.summary(names, NOW - days * DAY, NOW)
        timings.append(time.perf_counter() - started)
    p95s = [s.p95 for s in answer.values() if s.p95 is not None]
    return statistics.median(timings), statistics.fmean(p95s)


def sizes(store: SQLStore, backend: str, path: Path | None) -> tuple[int, dict[str, int]]:
    """(database bytes, bytes per table incl. indexes)."""
    tables = ("raw_results", "rollup_hours", "rollup_days", "plain_results")
    with store.engine.begin() as conn:
        if backend == "sqlite":
            per = {name: size for name, size in conn.execute(text(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))}
        else:
            per = {t: conn.scalar(text(f"SELECT pg_total_relation_size(to_regclass('{t}'))")) or 0
                   for t in tables}
            total = conn.scalar(text("SELECT pg_database_size(current_database())"))
    if backend == "sqlite":
        store.checkpoint()
        assert path is not None
        total = path.stat().st_size
    return int(total), {t: int(per.get(t, 0)) for t in tables}


def drop_baseline(store: SQLStore) -> None:
    _plain.drop_all(store.engine)


@contextmanager
def database(backend: str, dsn: str | None) -> Iterator[tuple[str, Path | None]]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            yield f"sqlite:///{path}", path
        return
    if dsn is not None:
        yield dsn, None
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from postgres import running_postgres  # type: ignore[import-not-found]  # the tests' server

    with running_postgres() as server:
        yield server.dsn(), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--dsn", help="a postgresql:// URL (default: start a throwaway server)")
    parser.add_argument("--checks", type=int, default=200, help="simulated checks")
    parser.add_argument("--days", type=int, default=90, help="simulated days")
    parser.add_argument("--ingest-checks", type=int, default=1000)
    parser.add_argument("--ingest-results", type=int, default=200_000)
    parser.add_argument("--query-checks", type=int, default=1000)
    args = parser.parse_args()

    with database(args.backend, args.dsn) as (url, path):
        store = open_store(url)
        assert isinstance(store, SQLStore)
        store.migrate()
        tocsin_rate, baseline_rate = measure_ingest(store, args.ingest_checks,
                                                    args.ingest_results)
        _, ingest_tables = sizes(store, args.backend, path)
        ingested = args.ingest_results
        with store.engine.begin() as conn:  # start the simulation from an empty history
            for table in (raw_results, rollup_hours, rollup_days):
                conn.execute(table.delete())
        drop_baseline(store)
        if args.backend == "sqlite":
            with store.engine.connect() as conn:
                conn.connection.dbapi_connection.execute("VACUUM")  # type: ignore[union-attr]

        started = time.perf_counter()
        raw_rows = simulate_history(store, args.checks, args.days)
        simulate_s = time.perf_counter() - started
        history_total, history_tables = sizes(store, args.backend, path)

        names = copy_rollups(store, args.checks, args.query_checks)
        query30, p95_30 = time_summary(store, names, 30)
        query90, p95_90 = time_summary(store, names, 90)
        store.close()

    mib = 1024 * 1024
    hours = args.checks * args.days * 24
    print(f"backend={args.backend} cpus={os.cpu_count()} python={sys.version.split()[0]}")
    print(f"ingest:  {tocsin_rate:,.0f} results/s through write_results "
          f"(baseline bare executemany {baseline_rate:,.0f}/s; ratio "
          f"{baseline_rate / tocsin_rate:.2f}x), {args.ingest_checks} checks, batches of 500")
    print(f"raw row: {ingest_tables['raw_results'] / ingested:.1f} B on disk per result "
          f"(baseline plain table {ingest_tables['plain_results'] / (ingested - 500):.1f} B); "
          f"in the simulated history {history_tables['raw_results'] / raw_rows:.1f} B")
    print(f"history: {args.checks} checks x {args.days} d @ {INTERVAL}s = "
          f"{history_total / mib:.1f} MiB ({history_total / 1e6:.1f} MB) "
          f"(raw {RAW_DAYS} d {history_tables['raw_results'] / mib:.1f} MiB, {raw_rows:,} rows; "
          f"hourly+5m {history_tables['rollup_hours'] / mib:.1f} MiB, "
          f"{history_tables['rollup_hours'] / hours:.0f} B/hour; "
          f"daily {history_tables['rollup_days'] / mib:.1f} MiB); simulated in {simulate_s:.0f} s")
    print(f"query:   uptime+p95 for {args.query_checks} checks: 30 d {query30 * 1000:.0f} ms, "
          f"90 d {query90 * 1000:.0f} ms (median of 5; mean p95 {p95_30:.1f} / {p95_90:.1f} ms)")


if __name__ == "__main__":
    main()
