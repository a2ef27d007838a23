from __future__ import annotations

import threading
import time

from tocsin.probes.base import CheckResult, CheckStatus
from tocsin.store import Store, open_store

from .conftest import result


def test_every_field_survives_a_round_trip(store: Store) -> None:
    written = [
        CheckResult(
            check="backend /health",
            status=CheckStatus.FAILING,
            started_at=1_790_000_000.123456,
            latency_ms=1234.5,
            message="status 503, expected 200 — «unavailable»",
            code=503,
            values={"response_time": 1234.5, "body_bytes": 17.0},
            timings={"connect": 1.25, "tls": 3.5, "first_byte": 1200.0},
        ),
        CheckResult.error("db", 1_790_000_001.0, "connection refused"),  # latency None
        CheckResult(check="cpu", status=CheckStatus.OK, started_at=1_790_000_002.0,
                    latency_ms=0.0, values={"cpu": 12.5}),
    ]
    store.write_results(written)

    for original in written:
        assert store.history(original.check) == [original]
    assert store.latest_results() == {r.check: r for r in written}
    assert store.latest_results()["db"].latency_ms is None
    assert store.latest_results()["db"].status is CheckStatus.ERROR


def test_latest_is_the_newest_result_of_each_check(store: Store) -> None:
    store.write_results([result("a", 1.0), result("b", 5.0), result("a", 3.0)])
    store.write_results([result("a", 2.0, message="in between"), result("b", 6.0)])

    latest = store.latest_results()

    assert {name: r.started_at for name, r in latest.items()} == {"a": 3.0, "b": 6.0}


def test_latest_does_not_regress_when_an_older_result_arrives_later(store: Store) -> None:
    store.write_results([result("a", 10.0, status=CheckStatus.FAILING)])
    store.write_results([result("a", 5.0, status=CheckStatus.OK)])

    latest = store.latest_results(["a"])["a"]

    assert (latest.started_at, latest.status) == (10.0, CheckStatus.FAILING)
    assert [r.started_at for r in store.history("a")] == [10.0, 5.0]


def test_latest_can_be_asked_for_some_checks(store: Store) -> None:
    store.write_results([result("a", 1.0), result("b", 1.0), result("c", 1.0)])

    assert set(store.latest_results(["a", "c", "never-ran"])) == {"a", "c"}
    assert store.latest_results([]) == {}


def test_history_is_newest_first_within_since_and_until(store: Store) -> None:
    store.write_results([result("a", float(t)) for t in (3, 1, 4, 5, 9, 2, 6)])
    store.write_results([result("other", 4.0)])

    def times(since: float | None = None, until: float | None = None,
              limit: int = 1000) -> list[float]:
        return [r.started_at for r in store.history("a", since, until, limit)]

    assert times() == [9, 6, 5, 4, 3, 2, 1]
    assert times(since=4) == [9, 6, 5, 4]
    assert times(until=4) == [3, 2, 1]
    assert times(since=2, until=6) == [5, 4, 3, 2]
    assert times(limit=2) == [9, 6]
    assert times(since=2, limit=3) == [9, 6, 5]
    assert times(limit=0) == []
    assert store.history("never-ran") == []


def test_an_empty_batch_is_a_no_op(store: Store) -> None:
    store.write_results([])

    assert store.latest_results() == {}


def test_url_names_the_database(store: Store, store_url: str) -> None:
    assert store.url == store_url


def test_two_stores_registering_the_same_new_checks_at_once(shared_url: str) -> None:
    stores = [open_store(shared_url) for _ in range(4)]
    stores[0].migrate()
    names = [f"check-{i}" for i in range(50)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(store: Store, offset: float) -> None:
        start.wait()
        try:
            store.write_results([result(name, offset) for name in names])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, float(i))) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(stores[0].history("check-7")) == len(stores)
    assert {r.started_at for r in stores[0].latest_results().values()} == {3.0}
    for s in stores:
        s.close()


def test_readers_work_while_a_writer_writes(store: Store) -> None:
    batches, per_batch = 40, 50
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        try:
            while not stop.is_set():
                store.latest_results()
                store.history("check-3", limit=10)
                reads += 1
                time.sleep(0.001)  # a dashboard, not a busy loop hogging the GIL
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for b in range(batches):
            store.write_results([result(f"check-{i}", float(b)) for i in range(per_batch)])
    finally:
        stop.set()
        for reader in readers:
            reader.join()

    assert errors == []
    assert reads > 0
    assert len(store.history("check-3")) == batches
    assert {r.started_at for r in store.latest_results().values()} == {batches - 1.0}


def test_result_details_round_trip(store: Store) -> None:
    result = CheckResult(check="deploy", status=CheckStatus.FAILING, started_at=1.0,
                         details={"deploy": {"id": "dep-1", "status": "build_failed"}})
    store.write_results([result])
    assert store.latest_results()["deploy"].details == result.details
