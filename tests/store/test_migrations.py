from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert, select

from tocsin.probes.base import CheckResult
from tocsin.store import SchemaError, Store, StoreError, open_store, schema
from tocsin.store.schema import LATEST_VERSION
from tocsin.store.sql import SQLStore

from .conftest import result, run_sql


def test_a_new_database_is_at_version_zero_until_migrated(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert store.schema_version() == 0
        assert store.migrate() == LATEST_VERSION
        assert store.schema_version() == LATEST_VERSION
    finally:
        store.close()


def test_migrate_is_idempotent(store: Store) -> None:
    store.write_results([result("api", 1.0)])

    assert store.migrate() == LATEST_VERSION
    assert store.migrate() == LATEST_VERSION

    assert store.history("api") == [result("api", 1.0)]


def test_each_migration_is_recorded_once(shared_url: str) -> None:
    for _ in range(2):
        store = open_store(shared_url)
        store.migrate()
        store.close()

    versions = [v for (v,) in run_sql(shared_url, "SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, LATEST_VERSION + 1))


def test_a_database_from_a_newer_tocsin_is_refused(shared_url: str) -> None:
    store = open_store(shared_url)
    store.migrate()
    run_sql(shared_url, f"INSERT INTO schema_version VALUES ({LATEST_VERSION + 1}, 0)")

    with pytest.raises(SchemaError, match=f"schema version {LATEST_VERSION + 1}.*upgrade Tocsin"):
        store.migrate()
    store.close()


def test_writing_to_an_unmigrated_database_is_a_schema_error(store_url: str) -> None:
    store = open_store(store_url)
    try:
        with pytest.raises(SchemaError):
            store.write_results([result("api", 1.0)])
    finally:
        store.close()


def test_stores_migrating_at_once_apply_each_migration_once(shared_url: str) -> None:
    stores = [open_store(shared_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    versions: list[int] = []
    errors: list[BaseException] = []

    def migrate(store: Store) -> None:
        start.wait()
        try:
            versions.append(store.migrate())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()

    assert errors == []
    assert versions == [LATEST_VERSION] * len(stores)
    assert run_sql(shared_url, "SELECT count(*) FROM schema_version") == [(LATEST_VERSION,)]


def test_version_2_adds_alerting_to_a_version_1_database_and_keeps_its_results(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    try:
        with monkeypatch.context() as m:
            m.setattr(schema, "LATEST_VERSION", 1)  # the Tocsin that shipped version 1
            assert store.migrate() == 1
        write_as_version_1(store, result("api", 1.0, message="before the upgrade"))
        with pytest.raises(SchemaError):
            store.load_alerts()  # no alerting tables yet

        assert store.migrate() == LATEST_VERSION

        assert store.schema_version() == LATEST_VERSION
        assert store.history("api") == [result("api", 1.0, message="before the upgrade")]
        assert store.load_alerts() == []
        assert store.list_deliveries() == ([], 0)
    finally:
        store.close()


def write_as_version_1(store: Store, written: CheckResult) -> None:
    """Store ``written`` as the Tocsin that shipped version 1 did (writes go to v6 tables now)."""
    assert isinstance(store, SQLStore)
    with store.engine.begin() as conn:
        named = select(schema.checks.c.id).where(schema.checks.c.name == written.check)
        check_id = conn.scalar(named)
        if check_id is None:
            conn.execute(insert(schema.checks).values(name=written.check, created_at=0.0))
            check_id = conn.scalar(named)
        conn.execute(insert(schema.results).values(
            check_id=check_id, started_at=written.started_at, status=written.status.value,
            latency_ms=written.latency_ms, code=written.code, message=written.message,
            details=None))


def test_version_3_adds_deploy_events_to_a_version_2_database(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    try:
        with monkeypatch.context() as m:
            m.setattr(schema, "LATEST_VERSION", 2)  # the Tocsin that shipped version 2
            assert store.migrate() == 2
        with pytest.raises(StoreError):
            store.list_deploys()  # no deploy table yet
        assert store.migrate() == LATEST_VERSION
        assert store.list_deploys() == []
    finally:
        store.close()
