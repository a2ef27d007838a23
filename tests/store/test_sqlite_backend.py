from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tocsin.store import StoreError, StoreUnavailable, open_store
from tocsin.store.backends.sqlite import open_sqlite

from .conftest import result


def test_file_database_uses_wal(file_url: str, tmp_path: Path) -> None:
    store = open_store(file_url)
    store.migrate()
    store.close()

    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_missing_parent_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"

    with pytest.raises(StoreError, match=f"directory {missing} does not exist"):
        open_store(f"sqlite:///{missing / 'tocsin.db'}")


def test_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///relative.db")
    store.migrate()
    store.close()

    assert (tmp_path / "relative.db").exists()


def test_memory_database_is_shared_between_threads() -> None:
    import threading

    store = open_store("sqlite:///:memory:")
    store.migrate()
    writer = threading.Thread(target=store.write_results, args=([result("a", 1.0)],))
    writer.start()
    writer.join()

    assert store.latest_results()["a"].started_at == 1.0
    store.close()


def test_a_locked_database_is_unavailable_not_broken(file_url: str, tmp_path: Path) -> None:
    store = open_sqlite(file_url, busy_timeout_ms=50)
    store.migrate()
    other = sqlite3.connect(tmp_path / "tocsin.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write_results([result("a", 1.0)])
    finally:
        other.execute("ROLLBACK")
        other.close()

    store.write_results([result("a", 1.0)])  # and recovers once the lock is gone
    assert store.latest_results()["a"].started_at == 1.0
    store.close()


@pytest.mark.parametrize("url", ["mysql://u:secret@127.0.0.1/db", "not a url:secret"])
def test_unknown_urls_are_refused_without_echoing_passwords(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)

    assert "secret" not in str(caught.value)
