"""The PostgreSQL backend's own behaviour: passwords, clear connection errors, and a
server that goes away and comes back. The store's behaviour on PostgreSQL is every
other test in this directory (``store_url`` includes it)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from postgres import PostgresServer, running_postgres
from tocsin.store import ResultWriter, StoreError, StoreUnavailable, open_store
from tocsin.store.backends.postgresql import PASSWORD_ENV, open_postgresql

from .conftest import result

pytestmark = pytest.mark.postgresql

# Characters that would need escaping in a URL: the password is handed over apart from it.
_AWKWARD_PASSWORD = "p@ss/w:rd%?#"


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, which it may stop and start."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def tocsin_role(
    postgres_server: PostgresServer, postgres_admin: psycopg.Connection[Any]
) -> Iterator[str]:
    """A login role ``tocsin`` with an awkward password and a database it owns; its URL."""
    postgres_admin.execute(f"CREATE ROLE tocsin LOGIN PASSWORD '{_AWKWARD_PASSWORD}'")
    postgres_admin.execute("CREATE DATABASE tocsin OWNER tocsin")
    try:
        yield postgres_server.dsn(user="tocsin", password="", database="tocsin")
    finally:
        postgres_admin.execute("DROP DATABASE tocsin WITH (FORCE)")
        postgres_admin.execute("DROP ROLE tocsin")


def test_the_password_comes_from_the_environment(
    tocsin_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, _AWKWARD_PASSWORD)

    store = open_store(tocsin_role)
    try:
        store.migrate()
        store.write_results([result("api", 1.0)])

        assert store.history("api") == [result("api", 1.0)]
        assert store.url == tocsin_role
    finally:
        store.close()


def test_the_password_can_come_from_a_file(tocsin_role: str, tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(_AWKWARD_PASSWORD + "\n", encoding="utf-8")

    store = open_postgresql(tocsin_role, env={f"{PASSWORD_ENV}_FILE": str(secret)})
    try:
        assert store.migrate() > 0
    finally:
        store.close()


def test_an_unreadable_password_file_is_named(tocsin_role: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"

    with pytest.raises(StoreError, match=f"{PASSWORD_ENV}_FILE '{missing}'"):
        open_postgresql(tocsin_role, env={f"{PASSWORD_ENV}_FILE": str(missing)})


def test_a_password_in_the_url_is_used_and_hidden(postgres_server: PostgresServer,
                                                  postgres_database: str) -> None:
    database = postgres_database.rsplit("/", 1)[1]
    url = postgres_server.dsn(database=database)

    store = open_postgresql(url, env={})
    try:
        assert store.migrate() > 0
        assert postgres_server.password not in store.url
        assert store.url == postgres_database.replace("postgres@", "postgres:***@", 1)
    finally:
        store.close()


def test_a_wrong_password_names_the_user_and_host_but_not_the_password(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    store = open_postgresql(postgres_database, env={PASSWORD_ENV: "not-the-password"})
    try:
        with pytest.raises(StoreError) as refused:
            store.migrate()
    finally:
        store.close()

    message = str(refused.value)
    assert type(refused.value) is StoreError  # retrying will not help
    assert 'password authentication failed for user "postgres"' in message
    assert f'"{postgres_server.host}", port {postgres_server.port}' in message
    assert "not-the-password" not in message


def test_a_wrong_password_in_the_url_is_not_shown_either(postgres_server: PostgresServer,
                                                         postgres_database: str) -> None:
    database = postgres_database.rsplit("/", 1)[1]
    store = open_postgresql(postgres_server.dsn(password="hunter2", database=database), env={})
    try:
        with pytest.raises(StoreError) as refused:
            store.write_results([result("api", 1.0)])
    finally:
        store.close()

    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in store.url


def test_a_missing_database_is_named(postgres_server: PostgresServer,
                                     postgres_database: str) -> None:
    url = postgres_database.rsplit("/", 1)[0] + "/no_such_db"
    store = open_store(url)
    try:
        with pytest.raises(StoreError, match='database "no_such_db" does not exist') as refused:
            store.migrate()
    finally:
        store.close()

    assert type(refused.value) is StoreError


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(StoreError, match="no database named in postgresql://tocsin:\\*\\*\\*@"):
        open_store("postgresql://tocsin:secret@127.0.0.1:5432")


def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = open_postgresql(f"postgresql://tocsin@127.0.0.1:{port}/tocsin",
                            env={PASSWORD_ENV: "secret"})
    try:
        with pytest.raises(StoreUnavailable, match="refused"):
            store.migrate()
    finally:
        store.close()


def test_writes_fail_while_the_server_is_down_and_succeed_after_a_restart(
    own_server: PostgresServer,
) -> None:
    store = open_postgresql(own_server.dsn(password=""), env={PASSWORD_ENV: own_server.password})
    try:
        store.migrate()
        # Fill the pool, so that every pooled connection dies with the server.
        barrier = threading.Barrier(4)

        def write(at: float) -> None:
            barrier.wait()
            store.write_results([result("api", at)])

        writers = [threading.Thread(target=write, args=(float(i),)) for i in range(4)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()

        own_server.stop()
        for attempt in range(3):
            with pytest.raises(StoreUnavailable):
                store.write_results([result("api", 10.0 + attempt)])
        with pytest.raises(StoreUnavailable):
            store.latest_results()
        own_server.start()

        store.write_results([result("api", 20.0)])
        assert [r.started_at for r in store.history("api")] == [20.0, 3.0, 2.0, 1.0, 0.0]
    finally:
        store.close()


def test_a_restart_between_two_writes_costs_no_write(own_server: PostgresServer) -> None:
    store = open_postgresql(own_server.dsn(password=""), env={PASSWORD_ENV: own_server.password})
    try:
        store.migrate()
        store.write_results([result("api", 1.0)])  # leaves a connection in the pool

        own_server.stop()
        own_server.start()

        # The pooled connection is dead: the pool notices before using it.
        store.write_results([result("api", 2.0)])
        assert [r.started_at for r in store.history("api")] == [2.0, 1.0]
    finally:
        store.close()


async def test_the_writer_keeps_results_through_a_restart(own_server: PostgresServer) -> None:
    store = open_postgresql(own_server.dsn(password=""), env={PASSWORD_ENV: own_server.password})
    store.migrate()
    writer = ResultWriter(store, batch_size=10, flush_interval=0.01, retry_initial=0.05,
                          retry_max=0.2)
    writer.start()
    try:
        writer.submit(result("api", 1.0))
        await writer.flush()
        await asyncio.to_thread(own_server.stop)
        for t in range(2, 12):
            writer.submit(result("api", float(t)))
        await asyncio.sleep(0.3)  # the writer tries, fails and backs off meanwhile
        assert writer.written == 1
        assert (writer.last_error or "").startswith("StoreUnavailable")

        await asyncio.to_thread(own_server.start)
        await asyncio.wait_for(writer.flush(), timeout=30)

        assert (writer.written, writer.dropped) == (11, 0)
        assert len(store.history("api")) == 11
    finally:
        await writer.close(abandon_after=5)  # a failed assertion may leave the server down
        store.close()
