"""The ``metric`` check against real sources: a JSON endpoint, SQLite and PostgreSQL files,
pushed points, and baselines read from a real store."""

from __future__ import annotations

import asyncio
import sqlite3
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from postgres import PostgresServer
from tocsin.alerting.conditions import AWAITING_DATA
from tocsin.config import ConfigError, ConfigIssue, load_config_text
from tocsin.probes import CheckResult, CheckSpec, CheckStatus, ProbeContext, probe_types
from tocsin.probes.database import DatabaseCheckConfig
from tocsin.probes.metric import MetricCheckConfig, MetricProbe
from tocsin.probes.metric_push import MetricPoint, PushedMetrics
from tocsin.store import Store, open_store

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR
WEEK = 604800.0
Issues = Callable[..., list[Any]]


def metric_probe(context: ProbeContext, *, name: str = "shop:signups", timeout: float = 1.0,
                 interval: float = 60.0, **config: Any) -> MetricProbe:
    spec = CheckSpec(name=name, service="shop", service_url=None, interval=interval,
                     timeout=timeout,
                     config=MetricCheckConfig.model_validate({"type": "metric", **config}))
    return MetricProbe(spec, context)


def test_metric_is_a_registered_check_type() -> None:
    assert probe_types()["metric"] is MetricProbe


# -- from a JSON endpoint ---------------------------------------------------------------------


@pytest.fixture
async def json_api() -> AsyncIterator[str]:
    """A local JSON API: numbers, text, null, a hanging and an oversized answer."""
    documents: dict[str, Any] = {
        "/stats": {"signups": {"today": 42, "ratio": 0.25}, "rows": [1, 2, 3]},
        "/text": {"signups": "forty-two" * 20},
        "/null": {"signups": None},
        "/flag": {"signups": True},
        "/object": {"signups": {"today": 42}},
    }

    async def document(request: web.Request) -> web.Response:
        return web.json_response(documents[request.path])

    release = asyncio.Event()  # set at teardown, so that cleanup need not wait for a hang

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    async def not_json(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"signups": 1}, status=500)

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"[" + b"1," * 600_000 + b"1]", content_type="application/json")

    app = web.Application()
    for path in documents:
        app.router.add_get(path, document)
    app.router.add_get("/hang", hang)
    app.router.add_get("/html", not_json)
    app.router.add_get("/fails", failing)
    app.router.add_get("/huge", huge)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    release.set()
    await runner.cleanup()


async def test_a_number_at_the_json_path_is_the_value(json_api: str,
                                                     context: ProbeContext) -> None:
    probe = metric_probe(context, url=f"{json_api}/stats", json_path="$.signups.today")

    result = await probe.run()

    assert result.status is OK, result.message
    assert result.values == {"value": 42.0}
    assert result.latency_ms is not None and 0 < result.latency_ms < 1000
    assert result.code == 200 and result.details["path"] == "$.signups.today"
    ratio = await metric_probe(context, url=f"{json_api}/stats", json_path="signups.ratio").run()
    assert ratio.values == {"value": 0.25}
    assert (await metric_probe(context, url=f"{json_api}/stats",
                               json_path="$.rows[-1]").run()).values == {"value": 3.0}


@pytest.mark.parametrize(("path", "json_path", "message"), [
    ("/text", "$.signups", "$.signups is a string 'forty-twoforty-twoforty-twoforty-two"),
    ("/null", "$.signups", "$.signups is null null, not a number"),
    ("/flag", "$.signups", "$.signups is a boolean true, not a number"),
    ("/object", "$.signups", '$.signups is an object {"today": 42}, not a number'),
    ("/stats", "$.signups.yesterday", "$.signups.yesterday is missing"),
    ("/stats", "$.rows[5]", "$.rows[5] is missing"),
])
async def test_what_is_not_a_number_is_an_error_saying_what_was_found_where(
        json_api: str, context: ProbeContext, path: str, json_path: str, message: str) -> None:
    result = await metric_probe(context, url=json_api + path, json_path=json_path).run()

    assert result.status is ERROR
    assert result.message.startswith(message)
    assert len(result.message) < 120  # a long text is cut
    assert "value" not in result.values


async def test_an_answer_that_is_not_json_or_not_2xx_or_too_big_is_an_error(
        json_api: str, context: ProbeContext) -> None:
    html = await metric_probe(context, url=f"{json_api}/html", json_path="$.x").run()
    assert html.status is ERROR and html.message.startswith("the body is not JSON")
    failing = await metric_probe(context, url=f"{json_api}/fails", json_path="$.signups").run()
    assert failing.status is ERROR and failing.message == "status 500: no number read"
    assert failing.code == 500
    huge = await metric_probe(context, url=f"{json_api}/huge", json_path="$[0]",
                              max_body="64KiB").run()
    assert huge.status is ERROR and huge.message == "the body is larger than 64 KiB (max_body)"


async def test_a_hanging_endpoint_is_an_error_after_the_check_timeout(
        json_api: str, context: ProbeContext) -> None:
    probe = metric_probe(context, url=f"{json_api}/hang", json_path="$.x", timeout=0.3)
    start = time.monotonic()

    result = await probe.run()

    assert time.monotonic() - start < 1.5
    assert result.status is ERROR and "timed out" in result.message


async def test_a_refused_connection_is_an_error(context: ProbeContext) -> None:
    result = await metric_probe(context, url="http://127.0.0.1:1/x", json_path="$.x").run()
    assert result.status is ERROR and result.message == "connection refused"


# -- from a SQL query -------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.executescript("""
            CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL, note TEXT);
            INSERT INTO orders (total, note) VALUES (10.5, 'a'), (20, 'b'), (30, NULL);
        """)
    connection.close()
    return path


def with_database(context: ProbeContext, url: str) -> ProbeContext:
    context.databases = {"shop": DatabaseCheckConfig.model_validate(
        {"type": "database", "url": url})}
    return context


async def test_a_query_returning_one_number_is_the_value(sqlite_file: Path,
                                                         context: ProbeContext) -> None:
    with_database(context, f"sqlite:///{sqlite_file}")
    probe = metric_probe(context, query="SELECT SUM(total) FROM orders", database="shop")

    result = await probe.run()

    assert result.status is OK, result.message
    assert result.values == {"value": 60.5}
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.details == {"source": "query", "database": "shop", "column": "SUM(total)"}


@pytest.mark.parametrize(("query", "message"), [
    ("SELECT note FROM orders WHERE id = 1", "column 'note' is a string 'a', not a number"),
    ("SELECT note FROM orders WHERE id = 3", "column 'note' is null null, not a number"),
    ("SELECT id, total FROM orders", "the query must return one column, not 2 (id, total)"),
    ("SELECT total FROM orders WHERE id > 99", "the query returned no row"),
    ("SELECT * FROM nowhere", "query failed: no such table: nowhere"),
])
async def test_a_query_that_gives_no_single_number_is_an_error(
        sqlite_file: Path, context: ProbeContext, query: str, message: str) -> None:
    with_database(context, f"sqlite:///{sqlite_file}")

    result = await metric_probe(context, query=query, database="shop").run()

    assert result.status is ERROR
    assert result.message == message
    assert "value" not in result.values


async def test_a_query_that_writes_is_refused_by_the_database(sqlite_file: Path,
                                                              context: ProbeContext) -> None:
    with_database(context, f"sqlite:///{sqlite_file}")
    query = "WITH x AS (SELECT 1) DELETE FROM orders"

    result = await metric_probe(context, query=query, database="shop").run()

    assert result.status is ERROR and result.message.startswith("refused: the query writes")
    with sqlite3.connect(sqlite_file) as connection:
        assert connection.execute("SELECT COUNT(*) FROM orders").fetchone() == (3,)
    connection.close()


async def test_a_postgresql_query_returning_a_numeric_is_the_value(
        postgres_server: PostgresServer, context: ProbeContext) -> None:
    with_database(context, postgres_server.url)
    probe = metric_probe(context, query="SELECT 41.5::numeric AS revenue", database="shop",
                         timeout=5.0)

    result = await probe.run()

    assert result.status is OK, result.message
    assert result.values == {"value": 41.5}
    text = await metric_probe(context, query="SELECT 'n/a' AS revenue", database="shop",
                              timeout=5.0).run()
    assert text.status is ERROR and text.message == \
        "column 'revenue' is a string 'n/a', not a number"


# -- pushed -----------------------------------------------------------------------------------


def push(context: ProbeContext, value: float, *, received_ago: float = 0.0,
         check: str = "shop:signups") -> MetricPoint:
    now = time.time()
    point = MetricPoint("signups", value, {"plan": "pro"}, now - received_ago - 1)
    context.metrics.record(check, point, now - received_ago)
    return point


async def test_a_push_check_reports_its_newest_point(context: ProbeContext) -> None:
    probe = metric_probe(context, push=True, metric="signups", match={"plan": "pro"})
    first = push(context, 12.5)
    context.metrics.record("shop:signups",
                           MetricPoint("signups", 3.0, {"plan": "pro"}, first.timestamp - 60),
                           time.time())  # a late, older point does not replace the newer

    result = await probe.run()

    assert result.status is OK and result.values == {"value": 12.5}
    assert result.details["point"]["timestamp"] == first.timestamp
    assert result.details["point"]["labels"] == {"plan": "pro"}


async def test_a_pushed_metric_is_absent_after_absent_after(context: ProbeContext) -> None:
    probe = metric_probe(context, push=True, absent_after="10s",
                         alerts=[{"when": "absent", "severity": "P2"}])
    push(context, 7.0, received_ago=11.0)

    result = await probe.run()

    assert result.status is FAILING and "value" not in result.values
    assert result.message == "no point of 'shop:signups' for 10s (the last was 7)"
    assert probe.spec.config.alerts[0].when.evaluate(result).held is True
    push(context, 8.0)
    fresh = await probe.run()
    assert fresh.values == {"value": 8.0}
    assert probe.spec.config.alerts[0].when.evaluate(fresh).held is False


async def test_after_a_start_absence_waits_for_absent_after(context: ProbeContext) -> None:
    probe = metric_probe(context, push=True, interval=20.0)  # absent after 3 × 20 s

    waiting = await probe.run()

    assert waiting.status is OK and waiting.details[AWAITING_DATA] is True
    assert waiting.message == "waiting for a first point of 'shop:signups' (absent after 1m)"
    context.metrics = PushedMetrics(clock=lambda: time.time() - 61)
    absent = await probe.run()
    assert absent.status is FAILING and absent.message == "no point of 'shop:signups' for 1m"
    assert AWAITING_DATA not in absent.details


# -- change conditions against a stored history ------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    opened.migrate()
    yield opened
    opened.close()


def stored(store: Store, value: float | None, at: float) -> None:
    values = {} if value is None else {"value": value}
    store.write_results([CheckResult(check="shop:signups", status=OK, started_at=at,
                                     values=values)])


DROP = [{"when": "drop > 50% vs 1w", "severity": "P2"}]


async def test_drop_vs_a_week_compares_with_the_value_stored_a_week_earlier(
        store: Store, context: ProbeContext) -> None:
    week_ago = time.time() - WEEK
    stored(store, 500.0, week_ago - 3000)  # outside the tolerance: never the baseline
    stored(store, 100.0, week_ago - 120)  # the nearest with a value
    stored(store, None, week_ago + 30)  # nearer, but an error result has no value
    stored(store, 90.0, week_ago + 200)
    context.store = store
    probe = metric_probe(context, push=True, alerts=DROP)
    rule = probe.spec.config.alerts[0]

    push(context, 40.0)
    fell = await probe.run()
    push(context, 60.0)
    held_up = await probe.run()

    assert fell.values == {"value": 40.0, "value@-1w": 100.0}
    assert fell.details["baselines"]["1w"] == {"at": pytest.approx(week_ago - 120),
                                               "value": 100.0}
    assert rule.when.evaluate(fell).held is True
    assert rule.when.evaluate(held_up).held is False


async def test_a_new_metric_has_no_baseline_and_never_fires_a_change(
        store: Store, context: ProbeContext) -> None:
    stored(store, 0.0, time.time() - 600)  # history, but none a week ago
    context.store = store
    probe = metric_probe(context, push=True, alerts=DROP)
    push(context, 1.0)

    result = await probe.run()

    assert result.values == {"value": 1.0}
    assert result.details["baselines"] == {"1w": "no baseline"}
    assert probe.spec.config.alerts[0].when.evaluate(result).held is False


async def test_a_baseline_of_zero_is_no_baseline(store: Store, context: ProbeContext) -> None:
    stored(store, 0.0, time.time() - WEEK)
    context.store = store
    probe = metric_probe(context, push=True, alerts=DROP)
    push(context, 1.0)

    result = await probe.run()

    assert result.details["baselines"] == {"1w": "no baseline: it was 0"}
    assert probe.spec.config.alerts[0].when.evaluate(result).held is False


async def test_baselines_are_read_for_json_and_query_values_too(
        store: Store, json_api: str, context: ProbeContext) -> None:
    stored(store, 84.0, time.time() - 86400 + 10)
    context.store = store
    probe = metric_probe(context, url=f"{json_api}/stats", json_path="$.signups.today",
                         alerts=[{"when": "drop > 40% vs 1d", "severity": "P3"},
                                 {"when": "value < 10", "severity": "P4"}])

    result = await probe.run()

    assert result.values == {"value": 42.0, "value@-1d": 84.0}
    drop, low = probe.spec.config.alerts
    assert drop.when.evaluate(result).held is True
    assert low.when.evaluate(result).held is False


# -- configuration ----------------------------------------------------------------------------


def config(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def test_a_config_of_each_source_loads() -> None:
    loaded = load_config_text(config("""
        web: {push_token: "${TOCSIN_PUSH_TOKEN}"}
        databases:
          shop: {url: "sqlite:///shop.db"}
        services:
          shop:
            checks:
              - {type: metric, name: api-signups, url: "http://127.0.0.1:9/stats",
                 json_path: $.signups}
              - {type: metric, name: db-orders, query: SELECT COUNT(*) FROM orders,
                 database: shop, alerts: [{when: "drop > 50% vs 1w", severity: P2}]}
              - {type: metric, name: pushed, push: true, metric: signups,
                 match: {plan: pro}, absent_after: 2h,
                 alerts: [{when: absent, severity: P3}, {when: "value < 10", severity: P4}]}
    """), env={"TOCSIN_PUSH_TOKEN": "push-token-for-tests-0123"})

    sources = [spec.config.source for spec in loaded.checks if spec.type == "metric"]
    assert sources == ["url", "query", "push"]
    assert loaded.config.web.push_token == "push-token-for-tests-0123"
    assert loaded.redactor.redact("Bearer push-token-for-tests-0123") == "Bearer ***"
    assert loaded.skipped == ()


@pytest.fixture
def issues_of() -> Issues:
    """The issues a config text is refused with (it must be refused)."""

    def refused(text: str) -> list[ConfigIssue]:
        with pytest.raises(ConfigError) as caught:
            load_config_text(text, "tocsin.yaml", env={})
        return caught.value.issues

    return refused


def only_issue(issues: list[Any]) -> tuple[str, int | None, str]:
    assert len(issues) == 1, issues
    return issues[0].path, issues[0].line, issues[0].message


def test_two_sources_or_none_are_refused_with_the_check_line(issues_of: Issues) -> None:
    two = issues_of(config("""
        services:
          shop:
            checks:
              - type: metric
                url: http://127.0.0.1:9/stats
                json_path: $.n
                push: true
    """))
    path, line, message = only_issue(two)
    assert (path, line) == ("services.shop.checks[0]", 4)
    assert "exactly one source" in message and "it has url and push" in message
    none = issues_of("services: {shop: {checks: [{type: metric, name: x}]}}\n")
    assert "exactly one source" in only_issue(none)[2] and "it has none" in only_issue(none)[2]


def test_a_half_given_source_is_refused(issues_of: Issues) -> None:
    path, _, message = only_issue(issues_of(config("""
        services:
          shop:
            checks:
              - {type: metric, url: "http://127.0.0.1:9/stats"}
    """)))
    assert path == "services.shop.checks[0]"
    assert message.startswith("url and json_path go together")
    _, _, message = only_issue(issues_of(config("""
        services:
          shop:
            checks:
              - {type: metric, url: "http://127.0.0.1:9/stats", json_path: "$.a", match: {a: b}}
    """)))
    assert message == "match only apply to push: true"


def test_an_unknown_database_is_refused_with_its_line(issues_of: Issues) -> None:
    issues = issues_of(config("""
        databases:
          shop: {url: "sqlite:///shop.db"}
        services:
          shop:
            checks:
              - type: metric
                query: SELECT COUNT(*) FROM orders
                database: shoop
    """))
    assert only_issue(issues) == ("services.shop.checks[0].database", 8,
                                  "unknown database 'shoop' (did you mean 'shop'?)")


@pytest.mark.parametrize(("condition", "message"), [
    ("drop > 50 vs 1w", "a change is a percentage"),
    ("drop > 50% vs 1y", "invalid offset '1y'"),
])
def test_a_bad_change_condition_is_refused_with_its_line(issues_of: Issues, condition: str,
                                                         message: str) -> None:
    issues = issues_of(config(f"""
        services:
          shop:
            checks:
              - type: metric
                push: true
                alerts:
                  - when: "{condition}"
                    severity: P2
    """))
    path, line, text = only_issue(issues)
    assert (path, line) == ("services.shop.checks[0].alerts[0].when", 7)
    assert message in text
