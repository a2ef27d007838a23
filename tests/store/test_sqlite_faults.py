"""SQLite faults, real ones: a full disk, a corrupt file, a newer schema, two processes.

The disk is made full with ``PRAGMA max_page_count`` on every connection the
store checks out; the other faults run the real ``tocsin`` command.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import Target
from tests.test_cli import _get_json, running_tocsin, tocsin, write_config
from tocsin.store import ResultWriter, StoreUnavailable
from tocsin.store.backends.sqlite import open_sqlite
from tocsin.store.lock import StoreLock, StoreLocked
from tocsin.store.sql import SQLStore

from .conftest import result


@pytest.fixture
def store(file_url: str) -> Iterator[SQLStore]:
    opened = open_sqlite(file_url)
    opened.migrate()
    yield opened
    opened.close()


class DiskQuota:
    """Caps the database file at ``pages`` pages on every connection (None: no cap)."""

    def __init__(self, store: SQLStore) -> None:
        self.pages: int | None = None
        event.listen(store.engine, "checkout", self._apply)
        store.engine.dispose()  # connections opened before the cap would ignore it

    def _apply(self, dbapi_connection: sqlite3.Connection, *_: Any) -> None:
        cap = self.pages if self.pages is not None else 1_073_741_823
        dbapi_connection.execute(f"PRAGMA max_page_count = {cap}")


def page_count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA page_count").fetchone()[0])


async def test_a_full_disk_is_transient_and_nothing_is_lost_when_space_returns(
        store: SQLStore, tmp_path: Path) -> None:
    quota = DiskQuota(store)
    store.write_results([result("a", 0.0)])
    quota.pages = page_count(tmp_path / "tocsin.db") + 2
    with pytest.raises(StoreUnavailable, match="full"):
        store.write_results([result("a", float(t), message="x" * 4000) for t in range(1, 50)])

    writer = ResultWriter(store, batch_size=50, retry_initial=0.01, retry_max=0.02)
    writer.start()
    for t in range(1, 201):
        writer.submit(result("a", float(t), message="x" * 4000))
    for _ in range(2000):
        if writer.last_error is not None:
            break
        await asyncio.sleep(0.01)
    assert writer.last_error is not None and "full" in writer.last_error
    assert not writer.available and writer.pending > 0

    quota.pages = None  # space is freed
    await writer.flush()
    assert (writer.written, writer.dropped, writer.pending) == (200, 0, 0)
    assert len(store.history("a", limit=1000)) == 201
    await writer.close()


def test_the_lock_names_the_file_and_the_pid_of_its_holder(file_url: str,
                                                           tmp_path: Path) -> None:
    held = StoreLock.acquire(file_url)
    assert held is not None
    try:
        with pytest.raises(StoreLocked) as refused:
            StoreLock.acquire(file_url)
        assert str(tmp_path / "tocsin.db") in str(refused.value)
        assert f"process {os.getpid()}" in str(refused.value)
    finally:
        held.release()
    again = StoreLock.acquire(file_url)  # released: free for the next one
    assert again is not None
    again.release()
    assert StoreLock.acquire("sqlite:///:memory:") is None


# -- through the command --------------------------------------------------------

async def test_a_corrupt_file_is_refused_with_its_name_not_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tocsin.yaml", "http://127.0.0.1:9")
    (tmp_path / "tocsin.db").write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    for command in (("run",), ("db", "stats")):
        code, _, err = await tocsin(*command, "-c", str(config), cwd=tmp_path)
        assert code == 1, (command, err)
        assert str(tmp_path / "tocsin.db") in err and "not a database" in err
        assert "Traceback" not in err


async def test_a_schema_newer_than_the_code_is_refused_cleanly(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tocsin.yaml", "http://127.0.0.1:9")
    open_sqlite(f"sqlite:///{tmp_path / 'tocsin.db'}").migrate()
    with sqlite3.connect(tmp_path / "tocsin.db") as db:
        db.execute("INSERT INTO schema_version VALUES (999, 0)")
    for command in (("run",), ("db", "migrate")):
        code, _, err = await tocsin(*command, "-c", str(config), cwd=tmp_path)
        assert code == 1, (command, err)
        assert "schema version 999" in err and str(tmp_path / "tocsin.db") in err
        assert "Traceback" not in err


async def test_a_second_process_on_one_file_is_refused_until_the_first_dies(
        tmp_path: Path, target: Target) -> None:
    config = write_config(tmp_path / "tocsin.yaml", target.url)
    async with running_tocsin(tmp_path, "-c", str(config)) as (first, url, _):
        status, health = await _get_json(f"{url}/health")
        store = health["store"]
        assert status == 200 and isinstance(store, dict)
        assert store["available"] is True and store["unavailable_since"] is None
        assert store["buffer"] == 100_000 and store["dropped"] == 0
        code, _, err = await tocsin("run", "-c", str(config), cwd=tmp_path)
        assert code == 1
        assert str(tmp_path / "tocsin.db") in err and f"process {first.pid}" in err
        assert "Traceback" not in err
        code, out, err = await tocsin("db", "stats", "-c", str(config), cwd=tmp_path)
        assert code == 0 and "results" in out, err  # reading beside it is fine
        code, _, err = await tocsin("db", "migrate", "-c", str(config), cwd=tmp_path)
        assert code == 1 and f"process {first.pid}" in err

        first.send_signal(signal.SIGKILL)
        await first.wait()
        async with running_tocsin(tmp_path, "-c", str(config)) as (third, url, _):
            assert third.returncode is None and url
