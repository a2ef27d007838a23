"""``tocsin db``: stats, migrate, export and import, run as the real command on real databases."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import inspect, select

from postgres import PostgresServer
from tests.test_cli import tocsin
from tocsin.alerting.model import Severity
from tocsin.alerting.pipeline import Alerting
from tocsin.config import load_config_text
from tocsin.probes import CheckResult, CheckStatus
from tocsin.store import open_store, schema
from tocsin.store.sql import SQLStore
from tocsin.testing import FakeClock, RecordingChannel

ALERTING = "channels: {pager: {type: recording}}\npolicies: {P3: {channels: [pager]}}\n"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def opened(url: str) -> SQLStore:
    store = open_store(url)
    assert isinstance(store, SQLStore)
    return store


def every_row(url: str) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows in primary-key order, as plain dicts."""
    store = opened(url)
    try:
        with store.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {table.name: [row._asdict() for row in conn.execute(
                        select(table).order_by(*(table.primary_key.columns or table.c)))]
                    for table in schema.metadata.sorted_tables
                    if table is not schema.schema_version and table.name in present}
    finally:
        store.close()


@pytest.fixture
async def source(tmp_path: Path) -> str:
    """A SQLite store with history in it: results of two checks and their rollups, a
    drilled notification and a firing alert with its event, incident and notification."""
    url = sqlite_url(tmp_path / "source.db")
    store = opened(url)
    store.migrate()
    store.write_results([
        CheckResult(check=name, status=CheckStatus.OK if t % 3 else CheckStatus.FAILING,
                    started_at=1_700_000_000.0 + t + 0.123456, latency_ms=12.5 + t,
                    message=f"run {t} é ✓", code=200, values={"response_time": 12.5 + t})
        for t in range(120) for name in ("api", "web")])
    RecordingChannel.reset()
    alerting = Alerting(load_config_text(ALERTING, "t.yaml", env={}), store, FakeClock())
    await alerting.start()
    alerting.engine.drill(Severity.P3)
    alerting.engine.report_condition("api:slow", True, severity=Severity.P3, service="api",
                                     check="api", summary="api is slow")
    await alerting.writer.flush()
    await alerting.sender.deliver_due()
    await alerting.stop()
    RecordingChannel.reset()
    store.close()
    return url


async def export_to(source_url: str, path: Path, cwd: Path) -> None:
    code, _, err = await tocsin("db", "export", "--url", source_url, str(path), cwd=cwd)
    assert code == 0, err
    assert "exported" in err


async def test_export_then_import_copies_every_row_and_new_ids_follow(
        source: str, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    await export_to(source, dump, tmp_path)
    lines = dump.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "tocsin-export"
    assert sum(1 for line in lines if json.loads(line).get("table") == "raw_results") == 240

    target = sqlite_url(tmp_path / "target.db")
    code, _, err = await tocsin("db", "import", "--url", target, str(dump), cwd=tmp_path)
    assert code == 0, err
    rows = every_row(source)
    assert all(rows[name] for name in ("raw_results", "rollup_hours", "alerts", "alert_events",
                                       "deliveries", "incidents"))
    assert every_row(target) == rows

    store = opened(target)  # ids go on after the imported ones: results still point right
    store.write_results([CheckResult(check="new", status=CheckStatus.OK, started_at=1.0)])
    assert [r.check for r in store.history("new")] == ["new"]
    assert len(store.history("api", limit=1000)) == 120
    store.close()


async def test_import_refuses_a_database_that_is_not_empty_unless_forced(
        source: str, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    await export_to(source, dump, tmp_path)
    target = tmp_path / "target.db"
    store = opened(sqlite_url(target))
    store.migrate()
    store.write_results([CheckResult(check="other", status=CheckStatus.OK, started_at=5.0)])
    store.close()

    code, _, err = await tocsin("db", "import", "--url", sqlite_url(target), str(dump),
                                cwd=tmp_path)
    assert code == 1 and "not empty" in err and "--force" in err
    assert [r["name"] for r in every_row(sqlite_url(target))["checks"]] == ["other"]

    code, _, err = await tocsin("db", "import", "--force", "--url", sqlite_url(target),
                                str(dump), cwd=tmp_path)
    assert code == 0, err
    assert every_row(sqlite_url(target)) == every_row(source)


async def test_a_broken_export_is_refused_and_leaves_the_target_as_it_was(
        source: str, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    await export_to(source, dump, tmp_path)
    lines = dump.read_text().splitlines()
    dump.write_text("\n".join([*lines[:100], "{not json", *lines[100:]]) + "\n")
    target = sqlite_url(tmp_path / "target.db")

    code, _, err = await tocsin("db", "import", "--url", target, str(dump), cwd=tmp_path)
    assert code == 1 and "line 101" in err and "Traceback" not in err
    assert all(not rows for rows in every_row(target).values())  # one transaction: nothing in


async def test_export_to_stdout_and_import_from_stdin(source: str, tmp_path: Path) -> None:
    code, out, err = await tocsin("db", "export", "--url", source, "-", cwd=tmp_path)
    assert code == 0, err
    (tmp_path / "piped.jsonl").write_text(out)
    target = sqlite_url(tmp_path / "target.db")
    code, _, err = await tocsin("db", "import", "--url", target, "piped.jsonl", cwd=tmp_path)
    assert code == 0, err
    assert every_row(target) == every_row(source)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A database of its own in the session's PostgreSQL server, dropped afterwards."""
    name = f"tocsin_import_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.dsn(database=name)
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_sqlite_history_moves_to_postgresql_row_for_row(
        source: str, tmp_path: Path, postgres_database: str) -> None:
    dump = tmp_path / "dump.jsonl"
    await export_to(source, dump, tmp_path)
    code, _, err = await tocsin("db", "import", "--url", postgres_database, str(dump),
                                cwd=tmp_path)
    assert code == 0, err
    assert every_row(postgres_database) == every_row(source)

    store = opened(postgres_database)  # the id sequences were moved past the imported ids
    store.write_results([CheckResult(check="new", status=CheckStatus.OK, started_at=1.0)])
    assert [r.check for r in store.history("new")] == ["new"]
    store.close()
    code, out, err = await tocsin("db", "stats", "--json", "--url", postgres_database,
                                  cwd=tmp_path)
    assert code == 0, err
    results = next(t for t in json.loads(out)["tables"] if t["table"] == "raw_results")
    assert results["rows"] == 241 and results["bytes"] > 0


# -- stats and migrate ------------------------------------------------------------

async def test_stats_gives_rows_bytes_and_time_span_of_each_table(
        source: str, tmp_path: Path) -> None:
    code, out, err = await tocsin("db", "stats", "--json", "--url", source, cwd=tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["schema_version"] == schema.LATEST_VERSION
    tables = {t["table"]: t for t in report["tables"]}
    results = tables["raw_results"]
    assert results["rows"] == 240 and results["bytes"] > 0
    assert results["oldest"] == 1_700_000_000.123456
    assert results["newest"] == 1_700_000_119.123456
    assert tables["checks"]["rows"] == 2

    code, out, err = await tocsin("db", "stats", "--url", source, cwd=tmp_path)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("raw_results "))
    assert "240" in row and "2023-11-14 22:13:20" in row


async def test_migrate_says_from_which_version_to_which(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new.db")
    code, out, _ = await tocsin("db", "migrate", "--url", url, cwd=tmp_path)
    assert code == 0 and f"schema v0 → v{schema.LATEST_VERSION}" in out
    code, out, _ = await tocsin("db", "migrate", "--url", url, cwd=tmp_path)
    assert code == 0 and f"already at schema v{schema.LATEST_VERSION}" in out


async def test_db_reads_the_storage_url_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "tocsin.yaml").write_text(f"storage: sqlite:///{tmp_path / 'conf.db'}\n")
    code, out, err = await tocsin("db", "migrate", "-c", "tocsin.yaml", cwd=tmp_path)
    assert code == 0, err
    assert str(tmp_path / "conf.db") in out and (tmp_path / "conf.db").exists()


async def test_prune_removes_raw_results_older_than_retention(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "old.db")
    store = opened(url)
    store.migrate()
    now = time.time()
    store.write_results([CheckResult(check="api", status=CheckStatus.OK, started_at=at)
                         for at in (now - 100 * 86400, now - 60)])
    store.close()

    code, out, err = await tocsin("db", "prune", "--url", url, cwd=tmp_path)
    assert code == 0, err
    assert "removed 1 raw results" in out
    store = opened(url)
    assert [r.started_at for r in store.history("api")] == [now - 60]
    store.close()
