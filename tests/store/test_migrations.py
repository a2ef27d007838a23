from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tocsin.store import SchemaError, Store, StoreError, open_store, schema
from tocsin.store.schema import LATEST_VERSION

from .conftest import result


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


def test_each_migration_is_recorded_once(file_url: str, tmp_path: Path) -> None:
    for _ in range(2):
        store = open_store(file_url)
        store.migrate()
        store.close()

    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        versions = [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, LATEST_VERSION + 1))


def test_a_database_from_a_newer_tocsin_is_refused(file_url: str, tmp_path: Path) -> None:
    store = open_store(file_url)
    store.migrate()
    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        db.execute("INSERT INTO schema_version VALUES (?, 0)", (LATEST_VERSION + 1,))

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


def test_stores_migrating_at_once_apply_each_migration_once(file_url: str, tmp_path: Path) -> None:
    stores = [open_store(file_url) for _ in range(4)]
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
    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        assert db.execute("SELECT count(*) FROM schema_version").fetchone() == (LATEST_VERSION,)


def test_version_2_adds_alerting_to_a_version_1_database_and_keeps_its_results(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    try:
        with monkeypatch.context() as m:
            m.setattr(schema, "LATEST_VERSION", 1)  # the Tocsin that shipped version 1
            assert store.migrate() == 1
        store.write_results([result("api", 1.0, message="before the upgrade")])
        with pytest.raises(SchemaError):
            store.load_alerts()  # no alerting tables yet

        assert store.migrate() == LATEST_VERSION

        assert store.schema_version() == LATEST_VERSION
        assert store.history("api") == [result("api", 1.0, message="before the upgrade")]
        assert store.load_alerts() == []
        assert store.list_deliveries() == ([], 0)
    finally:
        store.close()


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
