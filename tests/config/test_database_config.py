"""The ``databases:`` section: typed entries, refused with a line, resolved into checks."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from tocsin.config import load_config, load_config_text
from tocsin.config.loader import EXAMPLE_CONFIG_PATH
from tocsin.probes.database import DatabaseCheckConfig

Issues = Callable[..., list[Any]]


def config(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def test_each_database_is_a_check_of_its_own_service() -> None:
    loaded = load_config_text(config("""
        defaults: {timeout: 7s}
        databases:
          demo:
            url: sqlite:///does-not-exist-yet.db
            query: SELECT COUNT(*) FROM activities
            alerts:
              - {when: down, severity: P1}
              - {when: "query_time > 100ms", severity: P3}
          main:
            name: main-db
            url: postgresql://monitor@127.0.0.1:5432/app
            tables: 10
            statement_timeout: 2s
            interval: 30s
    """), env={})

    demo, main = loaded.checks
    assert (demo.name, demo.service, demo.type) == ("demo:database", "demo", "database")
    assert demo.timeout == 7.0 and demo.interval == 60.0
    assert isinstance(demo.config, DatabaseCheckConfig)
    assert demo.config.tables == 5 and demo.config.statement_timeout is None
    assert [rule.metric for rule in demo.config.alerts] == ["down", "query_time"]
    assert (main.name, main.service, main.interval) == ("main-db", "main", 30.0)
    assert main.config.tables == 10 and main.config.statement_timeout == 2.0
    assert loaded.skipped == ()


def test_a_missing_sqlite_file_is_not_a_config_error() -> None:
    loaded = load_config_text("databases: {demo: {url: 'sqlite:////nowhere/at/all.db'}}", env={})
    assert loaded.checks[0].name == "demo:database"


def test_example_config_checks_the_demo_database_with_an_empty_environment() -> None:
    loaded = load_config(EXAMPLE_CONFIG_PATH, env={})
    demo = next(spec for spec in loaded.checks if spec.service == "demo")
    assert demo.config.url == "sqlite:///homeverse_demo.db"
    assert demo.name not in loaded.skipped


def test_a_database_check_may_also_sit_in_a_service() -> None:
    loaded = load_config_text(config("""
        services:
          api:
            checks: [{type: database, url: "sqlite:///api.db", query: SELECT 1}]
    """), env={})
    assert loaded.checks[0].name == "api:database"


def test_unsupported_scheme_is_refused_with_its_line_and_without_the_url(
    issues_of: Issues,
) -> None:
    issues = issues_of(config("""
        databases:
          demo:
            url: mysql://root:hunter2secret@db/app
    """))

    assert [(issue.path, issue.line) for issue in issues] == [("databases.demo.url", 3)]
    assert "unsupported database URL scheme 'mysql'" in issues[0].message
    assert "hunter2secret" not in str(issues[0])


def test_bad_database_entries_are_each_refused(issues_of: Issues) -> None:
    issues = issues_of(config("""
        databases:
          a: {url: "sqlite://host/x.db"}
          b: {url: "sqlite:///x.db", query: "DELETE FROM users"}
          c: {url: "postgresql://u:pw@h/db", password: "other"}
          d: {url: "sqlite:///x.db", password: "pw"}
          e: {url: "sqlite:///x.db", tables: -1, statement_timeout: 0s}
          f: {query: SELECT 1}
          g: {url: "postgresql://h:notaport/db"}
          h: {url: "sqlite:///x.db", query: "  -- count them\\n  "}
    """))

    found = {(issue.path, issue.line): issue.message for issue in issues}
    assert "three slashes" in found[("databases.a.url", 2)]
    assert "not DELETE" in found[("databases.b.query", 3)]
    assert "not both" in found[("databases.c", 4)]
    assert "takes no password" in found[("databases.d", 5)]
    assert ("databases.e.tables", 6) in found
    assert "longer than zero" in found[("databases.e.statement_timeout", 6)]
    assert "url" in found[("databases.f.url", 7)]
    assert "port" in found[("databases.g.url", 8)]
    assert "the query is empty" in found[("databases.h.query", 9)]
    assert len(issues) == 9


def test_read_queries_may_start_with_comments_cte_or_pragma() -> None:
    load_config_text(config("""
        databases:
          a: {url: "sqlite:///x.db", query: "/* daily */ WITH t AS (SELECT 1) SELECT * FROM t"}
          b: {url: "sqlite:///x.db", query: "PRAGMA integrity_check"}
          c: {url: "sqlite:///x.db", query: "-- count\\n(SELECT 1)"}
    """), env={})


def test_database_passwords_from_the_environment_are_secrets() -> None:
    loaded = load_config_text(config("""
        databases:
          a: {url: "${A_URL}"}
          b: {url: "postgresql://monitor@127.0.0.1/app", password: "${B_PASS}"}
    """), env={"A_URL": "postgresql://monitor:s%40fe-pw@127.0.0.1/app", "B_PASS": "b-pass-1"})

    assert loaded.redactor.redact("s@fe-pw s%40fe-pw b-pass-1") == "*** *** ***"
    assert "b-pass-1" not in repr(loaded.checks[1].config)


def test_a_database_name_clashing_with_a_service_check_is_refused(issues_of: Issues) -> None:
    issues = issues_of(config("""
        services:
          demo:
            checks: [{type: database, url: "sqlite:///a.db"}]
        databases:
          demo: {url: "sqlite:///b.db"}
    """))

    assert [(issue.path, issue.line) for issue in issues] == [("databases.demo", 5)]
    assert "'demo:database' is already taken on line 3" in issues[0].message
