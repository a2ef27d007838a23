from __future__ import annotations

import math
import random

import pytest

from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import Store, open_store, schema
from tocsin.store.rollups import (
    RELATIVE_ERROR,
    Aggregate,
    decode_histogram,
    decode_minutes,
    encode_histogram,
    encode_minute,
)
from tocsin.store.sql import SQLStore

from .conftest import result
from .test_migrations import write_as_version_1

HOUR = 3600
DAY = 86400
T0 = 1_790_000_000 - 1_790_000_000 % DAY  # midnight UTC


def series(check: str, start: float, count: int, every: float, seed: int = 1) -> list[CheckResult]:
    """A known series: lognormal latencies, every 7th failing, every 11th an error."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        status = (CheckStatus.ERROR if i % 11 == 0 else
                  CheckStatus.FAILING if i % 7 == 0 else CheckStatus.OK)
        latency = None if i % 13 == 0 else round(rng.lognormvariate(4.4, 0.6), 3)
        out.append(result(check, start + i * every, status=status, latency_ms=latency))
    return out


def exact(results: list[CheckResult]) -> Aggregate:
    """The aggregate computed directly from the results."""
    aggregate = Aggregate()
    for r in results:
        code = {CheckStatus.OK: 0, CheckStatus.FAILING: 1, CheckStatus.ERROR: 2}[r.status]
        aggregate.add(code, None if r.latency_ms is None else round(r.latency_ms * 1000))
    return aggregate


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_each_bucket_counts_exactly_what_fell_in_it(store: Store) -> None:
    written = series("api", T0, 24 * 60, 60.0)  # a day at one a minute
    for start in range(0, len(written), 500):
        store.write_results(written[start:start + 500])

    fives = store.rollups("api", T0, T0 + DAY, 300)
    hours = store.rollups("api", T0, T0 + DAY, 3600)
    days = store.rollups("api", T0, T0 + DAY, 86400)

    assert len(fives) == 288 and len(hours) == 24 and len(days) == 1
    for tier in (fives, hours, days):
        for bucket in tier:
            end = bucket.start + bucket.step
            want = exact([r for r in written if bucket.start <= r.started_at < end])
            got = bucket.aggregate
            assert (got.count, got.failures, got.errors, got.measured) == (
                want.count, want.failures, want.errors, want.measured)
            assert (got.min_us, got.max_us, got.sum_us) == (want.min_us, want.max_us, want.sum_us)
            assert got.histogram == want.histogram
    summary = days[0].summary
    ok = [r for r in written if r.status is CheckStatus.OK]
    assert summary.count == len(written) and summary.ok == len(ok)
    assert summary.uptime == pytest.approx(len(ok) / len(written))


def test_percentiles_are_within_the_stated_error_bound(store: Store) -> None:
    written = series("api", T0, 5000, 7.0, seed=5)
    store.write_results(written)
    latencies = [r.latency_ms for r in written if r.latency_ms is not None]

    got = store.summary(["api"], T0, T0 + DAY)["api"]

    for q, estimate in ((0.5, got.p50), (0.95, got.p95), (0.99, got.p99)):
        truth = nearest_rank(latencies, q)
        assert estimate is not None
        assert abs(estimate - truth) <= RELATIVE_ERROR * truth + 1e-9, (q, estimate, truth)
    assert got.min == min(latencies) and got.max == max(latencies)
    assert got.mean == pytest.approx(sum(latencies) / len(latencies))


def test_out_of_order_and_late_results_land_in_their_buckets(store: Store) -> None:
    written = series("api", T0, 300, 60.0, seed=2)
    shuffled = written[:]
    random.Random(3).shuffle(shuffled)
    for start in range(0, 250, 50):
        store.write_results(shuffled[start:start + 50])
    store.write_results([result("other", T0 + 10 * HOUR)])  # moves the writer on
    store.write_results(shuffled[250:])  # late, into hours written long ago

    for bucket in store.rollups("api", T0, T0 + DAY, 300):
        inside = [r for r in written if bucket.start <= r.started_at < bucket.start + 300]
        assert bucket.aggregate == exact(inside)
    assert store.summary(["api"], T0, T0 + DAY)["api"].count == 300


def test_a_result_stored_twice_counts_once(store: Store) -> None:
    written = series("api", T0, 20, 60.0)
    store.write_results(written[:10])
    store.write_results([*written[5:], written[19]])  # a retried batch, and a duplicate

    assert len(store.history("api")) == 20
    assert store.summary(["api"], T0, T0 + DAY)["api"].count == 20


def test_a_restart_mid_bucket_continues_the_stored_rollup(store_url: str) -> None:
    if store_url.endswith(":memory:"):
        pytest.skip("an in-memory database does not survive closing it")
    written = series("api", T0 + 100, 40, 30.0, seed=4)  # 20 minutes, restart at 10
    first = open_store(store_url)
    first.migrate()
    first.write_results(written[:20])
    first.close()
    second = open_store(store_url)
    try:
        second.write_results(written[20:])
        for step in (300, 3600, 86400):
            for bucket in second.rollups("api", T0, T0 + DAY, step):
                inside = [r for r in written if bucket.start <= r.started_at < bucket.start + step]
                assert bucket.aggregate == exact(inside)
    finally:
        second.close()


def test_rollups_held_in_memory_are_folded_again_after_a_crash(store_url: str) -> None:
    if store_url.endswith(":memory:"):
        pytest.skip("an in-memory database does not survive closing it")
    written = series("api", T0 + 100, 40, 30.0, seed=8)
    crashed = open_store(store_url)
    crashed.migrate()
    assert isinstance(crashed, SQLStore)
    crashed.rollup_flush_interval = 3600.0  # nothing reaches the rollup tables
    crashed.write_results(written[:5])  # written at once: nothing was held yet
    crashed.write_results(written[5:25])  # held in memory, its hours listed as dirty
    crashed._forget_rollups()  # what a crash loses
    crashed.close()
    restarted = open_store(store_url)
    try:
        restarted.write_results(written[25:])
        for step in (300, 3600, 86400):
            for bucket in restarted.rollups("api", T0, T0 + DAY, step):
                end = bucket.start + step
                assert bucket.aggregate == exact(
                    [r for r in written if bucket.start <= r.started_at < end])
    finally:
        restarted.close()


def test_summary_spans_days_and_the_hours_at_either_end(store: Store) -> None:
    written = series("api", T0, 3 * 24 * 4, 900.0, seed=6)  # three days, every 15 minutes
    store.write_results(written)
    since, until = T0 + 5 * HOUR, T0 + 2 * DAY + 7 * HOUR  # a whole day plus 19 h and 7 h

    got = store.summary(["api", "never-ran"], since, until)

    inside = [r for r in written if since <= r.started_at < until]
    want = exact(inside).summary()
    assert got["api"] == want
    assert got["never-ran"].count == 0 and got["never-ran"].uptime is None
    # The window is whole hours: one starting mid-hour begins at the next hour.
    assert store.summary(["api"], since - 1800, until)["api"] == want


def test_a_daily_series_for_a_month(store: Store) -> None:
    store.write_results([result("api", T0 + d * DAY + 60, status=CheckStatus.FAILING
                                if d % 3 == 0 else CheckStatus.OK, latency_ms=10.0)
                         for d in range(31)])

    days = store.rollups("api", T0, T0 + 30 * DAY, 86400)

    assert [d.start for d in days] == [T0 + d * DAY for d in range(30)]
    assert [d.summary.uptime for d in days] == [0.0 if d % 3 == 0 else 1.0 for d in range(30)]
    with pytest.raises(ValueError):
        store.rollups("api", T0, T0 + DAY, 60)


def test_histograms_and_minutes_survive_their_stored_forms() -> None:
    rng = random.Random(7)
    for samples in (1, 5, 300, 70_000):
        aggregate = Aggregate()
        for _ in range(samples):
            aggregate.add(0, int(rng.lognormvariate(11, 1.5)))
        assert decode_histogram(encode_histogram(aggregate.histogram)) == aggregate.histogram
        minutes = [None, aggregate, None, Aggregate(count=2, errors=2)]
        blob = b"".join(encode_minute(m) for m in minutes)
        assert decode_minutes(blob)[:4] == minutes


def test_the_upgrade_to_version_6_rolls_up_stored_results(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(store_url)
    try:
        with monkeypatch.context() as m:
            m.setattr(schema, "LATEST_VERSION", 5)  # the Tocsin before rollups
            assert store.migrate() == 5
        old = [result("api", T0 + 60, latency_ms=12.5),
               result("api", T0 + 4000, status=CheckStatus.FAILING, message="503")]
        for written in old:
            write_as_version_1(store, written)

        assert store.migrate() == schema.LATEST_VERSION

        assert store.history("api") == old[::-1]
        hours = store.rollups("api", T0, T0 + DAY, 3600)
        assert [(h.start, h.aggregate) for h in hours] == [
            (T0, exact(old[:1])), (T0 + HOUR, exact(old[1:]))]
        assert store.summary(["api"], T0, T0 + DAY)["api"] == exact(old).summary()
    finally:
        store.close()


def test_a_batch_touching_more_hours_than_a_statement_may_name(store: Store) -> None:
    """A backfill of 100 checks × 600 hours in one batch: 60,000 hour keys, more than any
    SQLite build allows parameters in one statement, are read and written in pieces."""
    start = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    batch = [CheckResult(f"c{c}", CheckStatus.OK, start + h * 3600.0, 10.0)
             for h in range(600) for c in range(100)]
    store.write_results(batch)
    store.write_results(batch[:5])  # again: duplicates are found in pieces too
    summary = store.summary([f"c{c}" for c in range(100)], start, start + 600 * 3600.0)
    assert all(s.count == 600 for s in summary.values())
