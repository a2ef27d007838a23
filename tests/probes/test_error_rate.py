"""The error_rate probe against real local targets: the ratio, the window, the reasons."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from targets import closed_port, hanging_target, http_target, truncated_body_target
from tocsin.alerting.conditions import parse_condition
from tocsin.config import load_config_text
from tocsin.probes import CheckSpec, CheckStatus, ProbeContext, ProbeError, probe_types
from tocsin.probes.error_rate import ErrorRateCheckConfig, ErrorRateProbe

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR
MakeProbe = Callable[..., ErrorRateProbe]


@pytest.fixture
def error_rate_probe(context: ProbeContext) -> MakeProbe:
    """``error_rate_probe(service_url, requests, timeout=1.0, **config)`` → a probe."""

    def make(service_url: str | None, requests: list[Any], timeout: float = 1.0,
             **config: Any) -> ErrorRateProbe:
        spec = CheckSpec(
            name="api:error_rate", service="api", service_url=service_url, interval=10.0,
            timeout=timeout,
            config=ErrorRateCheckConfig.model_validate(
                {"type": "error_rate", "requests": requests, **config}),
        )
        return ErrorRateProbe(spec, context)

    return make


@dataclass
class Switchboard:
    """A local API whose endpoints answer the status a test sets (200 until set), or hang."""

    url: str = ""
    statuses: dict[str, int] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)


@pytest.fixture
async def switchboard() -> AsyncIterator[Switchboard]:
    board = Switchboard()

    async def answer(request: web.Request) -> web.Response:
        if request.path in board.hanging:
            await asyncio.Event().wait()
        return web.Response(status=board.statuses.get(request.path, 200), text="answer")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)  # hung handlers too
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    board.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield board
    await runner.cleanup()


def test_error_rate_is_a_registered_check_type() -> None:
    assert probe_types()["error_rate"] is ErrorRateProbe


# -- the ratio -----------------------------------------------------------------------------------


async def test_mixed_statuses_give_the_exact_error_rate(error_rate_probe: MakeProbe) -> None:
    async with http_target() as target:
        probe = error_rate_probe(target.url, ["GET /status/200", "GET /status/503",
                                              "GET /status/404", "GET /status/500"])
        result = await probe.run()

    assert result.status is OK, result.message  # the rule, not the probe, judges the ratio
    assert result.values["error_rate"] == 50.0  # 503 and 500; a 404 is not the server's fault
    assert (result.values["requests"], result.values["errors"]) == (4, 2)
    assert result.message == "2 of 4 requests failed: GET /status/503 → 503, GET /status/500 → 500"
    assert parse_condition("error_rate > 5%").evaluate(result).held is True
    assert parse_condition("error_rate > 50%").evaluate(result).held is False


async def test_expected_status_decides_what_counts_as_an_error(
    error_rate_probe: MakeProbe,
) -> None:
    async with http_target() as target:
        probe = error_rate_probe(target.url, ["GET /status/200", "GET /status/404",
                                              "GET /status/301"],
                                 expect={"status": "2xx"})
        result = await probe.run()

    assert result.values["error_rate"] == pytest.approx(200 / 3)
    assert "GET /status/404 → 404" in result.message


async def test_all_answered_is_zero_with_the_slowest_answer_as_response_time(
    error_rate_probe: MakeProbe,
) -> None:
    async with http_target() as target:
        result = await error_rate_probe(target.url, ["GET /slow/120", "GET /status/200"]).run()

    assert result.status is OK
    assert result.values["error_rate"] == 0.0
    assert result.message == ""
    assert result.values["response_time"] >= 120
    assert result.latency_ms is not None and result.latency_ms >= 120


async def test_details_name_each_request_and_why_it_failed(error_rate_probe: MakeProbe) -> None:
    async with http_target() as target:
        result = await error_rate_probe(target.url, ["GET /status/200", "GET /status/502"]).run()

    good, bad = result.details["requests"]
    assert good["request"] == "GET /status/200"
    assert (good["status"], good["error"], good["ok"]) == (200, None, True)
    assert bad["request"] == "GET /status/502"
    assert (bad["status"], bad["error"], bad["ok"]) == (502, None, False)
    assert bad["latency_ms"] > 0


async def test_a_window_averages_over_the_last_runs(
    error_rate_probe: MakeProbe, switchboard: Switchboard
) -> None:
    probe = error_rate_probe(switchboard.url, ["GET /a", "GET /b", "GET /c"], window=10)
    for _ in range(9):
        assert (await probe.run()).values["error_rate"] == 0.0

    switchboard.statuses["/b"] = 503
    bad_run = await probe.run()
    assert bad_run.values["error_rate"] == pytest.approx(100 / 30)  # 1 of 30, not 1 of 3
    assert (bad_run.values["requests"], bad_run.values["errors"]) == (30, 1)
    assert bad_run.message == ("1 of 3 requests failed: GET /b → 503 "
                               "(error rate 3.33% over the last 10 runs)")

    switchboard.statuses["/b"] = 200
    for _ in range(9):
        still_in_window = await probe.run()
    assert still_in_window.values["error_rate"] == pytest.approx(100 / 30)
    assert still_in_window.message == "error rate 3.33% over the last 10 runs"
    slid_out = await probe.run()
    assert slid_out.values["error_rate"] == 0.0
    assert slid_out.message == ""


async def test_a_window_not_yet_full_averages_over_the_runs_so_far(
    error_rate_probe: MakeProbe, switchboard: Switchboard
) -> None:
    switchboard.statuses["/a"] = 500
    probe = error_rate_probe(switchboard.url, ["GET /a", "GET /b"], window=5)
    assert (await probe.run()).values["error_rate"] == 50.0
    switchboard.statuses["/a"] = 200
    assert (await probe.run()).values["error_rate"] == 25.0


async def test_max_error_rate_makes_a_run_failing(
    error_rate_probe: MakeProbe, switchboard: Switchboard
) -> None:
    switchboard.statuses["/a"] = 500
    probe = error_rate_probe(switchboard.url, ["GET /a", "GET /b", "GET /c", "GET /d"],
                             expect={"error_rate": "20%"})
    failing = await probe.run()
    switchboard.statuses["/a"] = 200
    fine = await probe.run()

    assert failing.status is FAILING
    assert failing.values["error_rate"] == 25.0
    assert fine.status is OK


# -- unreachable ---------------------------------------------------------------------------------


async def test_every_request_timing_out_is_one_error_result_within_the_timeout(
    error_rate_probe: MakeProbe,
) -> None:
    async with hanging_target() as target:
        probe = error_rate_probe(target.url, ["GET /a", "GET /b", "POST /c"], timeout=0.3)
        start = time.perf_counter()
        result = await probe.run()
        elapsed = time.perf_counter() - start

    assert 0.3 <= elapsed < 0.8  # concurrent: one timeout, not three
    assert result.status is ERROR
    assert result.message == ("all 3 requests failed: GET /a → timed out after 0.3 s, "
                              "GET /b → timed out after 0.3 s, POST /c → timed out after 0.3 s")
    assert result.values["error_rate"] == 100.0
    assert "response_time" not in result.values  # nothing answered
    assert [item["error"] for item in result.details["requests"]] == ["timed out after 0.3 s"] * 3
    assert [item["status"] for item in result.details["requests"]] == [None] * 3
    assert parse_condition("down").evaluate(result).held is True


async def test_refused_connections_are_an_error(error_rate_probe: MakeProbe) -> None:
    async with closed_port() as target:
        result = await error_rate_probe(target.url, ["GET /health"]).run()

    assert result.status is ERROR
    assert result.message == "the request failed: GET /health → connection refused"


async def test_an_endpoint_that_hangs_is_an_error_of_a_reachable_api(
    error_rate_probe: MakeProbe, switchboard: Switchboard
) -> None:
    switchboard.hanging.add("/search")
    result = await error_rate_probe(switchboard.url, ["GET /a", "GET /search"],
                                    timeout=0.3).run()

    assert result.status is OK  # something answered: not down, a 50 % error rate
    assert result.values["error_rate"] == 50.0
    assert result.message == "1 of 2 requests failed: GET /search → timed out after 0.3 s"


async def test_a_body_cut_off_mid_way_is_a_failed_request(error_rate_probe: MakeProbe) -> None:
    async with truncated_body_target() as target:
        result = await error_rate_probe(target.url, ["GET /"]).run()

    assert result.status is ERROR
    assert result.details["requests"][0]["error"] == "connection closed mid-response"


# -- requests as sent ----------------------------------------------------------------------------


async def test_headers_method_and_body_are_sent_on_fresh_connections(
    error_rate_probe: MakeProbe,
) -> None:
    async with http_target() as target:
        probe = error_rate_probe(
            target.url,
            ["GET /echo", {"method": "post", "path": "/echo", "json_body": {"a": 1},
                           "headers": {"x-trace": "t1"}}],
            headers={"x-company-key": "company-key-456"},
        )
        await probe.run()
        await probe.run()

    assert len(target.requests) == 4
    assert target.connections == 4  # a fresh connection per request, as a new client has
    by_method = {request.method: request for request in target.requests[:2]}
    assert {request.headers["x-company-key"] for request in target.requests} == {
        "company-key-456"}
    assert by_method["POST"].body == b'{"a":1}'
    assert by_method["POST"].headers["Content-Type"] == "application/json"
    assert by_method["POST"].headers["x-trace"] == "t1"
    assert "x-trace" not in by_method["GET"].headers


async def test_a_service_without_url_is_refused_when_built(error_rate_probe: MakeProbe) -> None:
    with pytest.raises(ProbeError, match="needs a service with a url"):
        error_rate_probe(None, ["GET /"])


# -- configuration -------------------------------------------------------------------------------


CONFIG = """\
services:
  backend:
    url: http://127.0.0.1:8001
    checks:
      - type: error_rate
        requests:
{requests}
        headers: {{x-company-key: "${{COMPANY_KEY}}"}}
"""


def issues(requests: str) -> list[str]:
    from tocsin.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config_text(CONFIG.format(requests=requests), env={"COMPANY_KEY": "k-123456"})
    return [str(issue) for issue in caught.value.issues]


def test_request_lines_are_parsed_at_load() -> None:
    loaded = load_config_text(
        CONFIG.format(requests="          - GET /api/v1/projects\n"
                               "          - {method: POST, path: /x, body: hi}"),
        env={"COMPANY_KEY": "k-123456"},
    )
    [check] = loaded.checks
    assert check.name == "backend:error_rate"
    first, second = check.config.requests
    assert (first.method, first.path, first.label) == ("GET", "/api/v1/projects",
                                                       "GET /api/v1/projects")
    assert (second.method, second.path, second.body) == ("POST", "/x", "hi")
    assert check.config.window == 1
    assert "k-123456" in loaded.redactor  # header values are secrets
    assert loaded.skipped == ()


def test_an_empty_request_list_is_refused_with_its_line() -> None:
    assert issues("          []") == [
        "tocsin.yaml:6: services.backend.checks[0].requests: no requests: list at least "
        "one, as 'METHOD /path', e.g. 'GET /api/v1/projects'"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("GET", "invalid request 'GET': write a request as 'METHOD /path'"),
        ("GET /a /b", "invalid request 'GET /a /b'"),
        ("FETCH /a", "method 'FETCH' is not one of"),
        ("GET api/v1", "path 'api/v1' must start with '/'"),
    ],
)
def test_a_bad_request_line_is_refused_with_its_line(line: str, message: str) -> None:
    [issue] = issues(f"          - GET /ok\n          - {line}")
    assert issue.startswith("tocsin.yaml:8: services.backend.checks[0].requests[1]")
    assert message in issue


def test_a_window_must_be_at_least_one_run() -> None:
    text = CONFIG.format(requests="          - GET /a") + "        window: 0\n"
    from tocsin.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={"COMPANY_KEY": "k-123456"})
    [issue] = caught.value.issues
    assert (issue.path, issue.line) == ("services.backend.checks[0].window", 9)


def test_body_and_json_body_together_are_refused() -> None:
    [issue] = issues("          - {method: POST, path: /x, body: a, json_body: {b: 1}}")
    assert "either body or json_body" in issue
