"""The http probe against real local targets, well-behaved and hostile."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable

import pytest

from targets import (
    closed_port,
    dripping_target,
    endless_body_target,
    endless_headers_target,
    garbage_target,
    hanging_target,
    http_target,
    scripted_target,
    tls_target,
    truncated_body_target,
)
from tocsin.probes import CheckStatus, ProbeContext, ProbeError, build_probe, probe_types
from tocsin.probes.http import HTTPProbe

OK, FAILING, ERROR = CheckStatus.OK, CheckStatus.FAILING, CheckStatus.ERROR
MakeHTTPProbe = Callable[..., HTTPProbe]  # the ``http_probe`` fixture of conftest.py


def test_http_is_a_registered_check_type() -> None:
    assert probe_types()["http"] is HTTPProbe


# -- answers -------------------------------------------------------------------------------------


async def test_healthy_target_is_ok_with_status_latency_and_timings(
    http_probe: MakeHTTPProbe,
) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path="/health").run()

    assert result.status is OK, result.message
    assert result.check == "svc http"
    assert result.code == 200
    assert result.message == ""
    assert result.latency_ms is not None and 0 < result.latency_ms < 1000
    assert result.values == {"response_time": result.latency_ms, "status_code": 200}
    assert set(result.timings) == {"connect", "first_byte", "total"}  # an IP: no DNS lookup
    assert 0 < result.timings["connect"] <= result.timings["first_byte"] <= result.timings["total"]
    assert target.requests[0].path_qs == "/health"


async def test_build_probe_makes_an_http_probe(context: ProbeContext) -> None:
    from tocsin.probes import CheckSpec
    from tocsin.probes.http import HTTPCheckConfig

    async with http_target() as target:
        spec = CheckSpec(name="n", service="svc", service_url=target.url, interval=10.0,
                         timeout=1.0, config=HTTPCheckConfig.model_validate({"type": "http"}))
        probe = build_probe(spec, context)
        assert isinstance(probe, HTTPProbe)
        assert (await probe.run()).status is OK
        assert target.requests[0].path_qs == "/"  # no path: the service url itself


async def test_status_outside_default_range_is_failing(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path="/status/503").run()

    assert result.status is FAILING
    assert result.code == 503
    assert result.message == "status 503 not in 200-399"
    assert result.values["status_code"] == 503


@pytest.mark.parametrize(
    ("expected", "code", "status"),
    [
        (201, 201, OK),
        (200, 201, FAILING),
        ([200, 204], 204, OK),
        ([200, 204], 202, FAILING),
        ("4xx", 404, OK),
        ("4xx", 500, FAILING),
        ("500-503", 503, OK),
        ("500-503", 504, FAILING),
        ([200, "5xx"], 599, OK),
    ],
)
async def test_expected_status_as_code_list_class_or_range(
    http_probe: MakeHTTPProbe, expected: object, code: int, status: CheckStatus
) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path=f"/status/{code}",
                                  expect={"status": expected}).run()

    assert result.status is status, result.message
    if status is FAILING:
        assert result.message.startswith(f"status {code} not in ")


async def test_slow_answer_fails_the_response_time_condition(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        slow = await http_probe(target.url, path="/slow/150",
                                expect={"response_time": "100ms"}).run()
        fast = await http_probe(target.url, path="/health",
                                expect={"response_time": "500ms"}).run()

    assert slow.status is FAILING
    assert slow.message.startswith("response time ")
    assert slow.message.endswith(" ms > 100 ms")
    assert slow.latency_ms is not None and slow.latency_ms >= 150
    assert fast.status is OK


async def test_body_contains(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        found = await http_probe(target.url, path="/health",
                                 expect={"body_contains": "all ok"}).run()
        missing = await http_probe(target.url, path="/health",
                                   expect={"body_contains": "healthy"}).run()

    assert found.status is OK
    assert missing.status is FAILING
    assert missing.message == "body does not contain 'healthy'"


async def test_body_regex(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        found = await http_probe(target.url, path="/json",
                                 expect={"body_regex": r'"version":\s*\d+'}).run()
        missing = await http_probe(target.url, path="/json",
                                   expect={"body_regex": r"^down$"}).run()

    assert found.status is OK
    assert missing.status is FAILING
    assert missing.message == "body does not match /^down$/"


async def test_json_paths_equal_expected_values(http_probe: MakeHTTPProbe) -> None:
    expect = {"json": {"$.status": "ok", "checks.db": "ok", "$.items[1].name": "second",
                       "$.version": 3, "healthy": True}}
    async with http_target() as target:
        result = await http_probe(target.url, path="/json", expect=expect).run()

    assert result.status is OK, result.message


async def test_json_mismatches_are_each_named(http_probe: MakeHTTPProbe) -> None:
    expect = {"json": {"$.checks.cache": "ok", "$.items[5].name": "sixth", "$.healthy": 1}}
    async with http_target() as target:
        result = await http_probe(target.url, path="/json", expect=expect).run()

    assert result.status is FAILING
    assert result.message.split("; ") == [
        "$.checks.cache is 'degraded', expected 'ok'",
        "$.items[5].name is missing, expected 'sixth'",
        "$.healthy is True, expected 1",  # JSON true is not the number 1
    ]


async def test_json_condition_on_a_body_that_is_not_json(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path="/health",
                                  expect={"json": {"status": "ok"}}).run()

    assert result.status is FAILING
    assert result.message.startswith("body is not JSON")


async def test_response_headers_compared_by_case_insensitive_name(
    http_probe: MakeHTTPProbe,
) -> None:
    async with http_target() as target:
        same = await http_probe(target.url, path="/headers",
                                expect={"headers": {"x-env": "production"}}).run()
        other = await http_probe(target.url, path="/headers",
                                 expect={"headers": {"X-Secret": "swordfish",
                                                     "X-Missing": "x"}}).run()

    assert same.status is OK, same.message
    assert other.status is FAILING
    assert other.message == (
        "header X-Secret differs from the expected value; header X-Missing missing")
    assert "hunter2" not in other.message and "swordfish" not in other.message


async def test_method_headers_and_body_are_sent(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        posted = await http_probe(target.url, path="/echo", method="post",
                                  headers={"X-Company-Key": "k-123"}, body="ping").run()
        put = await http_probe(target.url, path="/echo", method="PUT",
                               json_body={"a": [1, 2]}).run()

    assert posted.status is OK and put.status is OK
    first, second = target.requests
    assert first.method == "POST"
    assert first.headers["X-Company-Key"] == "k-123"
    assert first.headers["User-Agent"].startswith("Tocsin/")
    assert first.body == b"ping"
    assert second.method == "PUT"
    assert json.loads(second.body) == {"a": [1, 2]}
    assert second.headers["Content-Type"] == "application/json"


async def test_head_request_reads_no_body(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path="/health", method="HEAD").run()

    assert result.status is OK
    assert target.requests[0].method == "HEAD"


async def test_path_is_joined_onto_the_service_url(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        result = await http_probe(f"{target.url}/api/", path="v1/health").run()
        query = await http_probe(target.url, path="/text?text=abc",
                                 expect={"body_contains": "abc"}).run()

    assert result.status is OK, result.message
    assert query.status is OK, query.message
    assert [r.path_qs for r in target.requests] == ["/api/v1/health", "/text?text=abc"]


async def test_full_url_ignores_the_service_url(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target, closed_port() as elsewhere:
        result = await http_probe(elsewhere.url, url=f"{target.url}/health").run()
        no_service = await http_probe(None, url=f"{target.url}/health").run()

    assert result.status is OK and no_service.status is OK
    assert [r.path_qs for r in target.requests] == ["/health", "/health"]


# -- redirects -----------------------------------------------------------------------------------


async def test_redirects_are_followed(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path="/redirect/3",
                                  expect={"status": 200, "body_contains": "arrived"}).run()

    assert result.status is OK, result.message
    assert [r.path_qs for r in target.requests] == [
        "/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0"]


async def test_redirect_loop_is_an_error(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path="/loop", max_redirects=4).run()

    assert result.status is ERROR
    assert result.message == "too many redirects (4)"
    assert len(target.requests) == 4  # aiohttp gives up on the 4th redirect answer


async def test_redirect_not_followed_is_judged_itself(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        default = await http_probe(target.url, path="/redirect/2", follow_redirects=False).run()
        strict = await http_probe(target.url, path="/redirect/2", follow_redirects=False,
                                  expect={"status": 200}).run()

    assert default.status is OK and default.code == 302
    assert strict.status is FAILING
    assert strict.message == "status 302 not in 200"
    assert len(target.requests) == 2


# -- connections ---------------------------------------------------------------------------------


async def test_each_run_opens_a_new_connection_by_default(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        probe = http_probe(target.url, path="/health")
        first, second = await probe.run(), await probe.run()

    assert first.status is OK and second.status is OK
    assert target.connections == 2
    assert "connect" in second.timings


async def test_keepalive_reuses_the_connection(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        probe = http_probe(target.url, path="/health", keepalive=True)
        first, second = await probe.run(), await probe.run()

    assert first.status is OK and second.status is OK
    assert target.connections == 1
    assert "connect" in first.timings
    assert "connect" not in second.timings  # served on the pooled connection


async def test_name_lookup_is_timed(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        url = target.url.replace("127.0.0.1", "localhost")
        result = await http_probe(url, path="/health").run()

    if result.status is ERROR:  # localhost may resolve to ::1 first where IPv6 is off
        pytest.skip(f"localhost unusable here: {result.message}")
    assert "dns" in result.timings


# -- hostile targets -----------------------------------------------------------------------------


async def test_closed_port_is_connection_refused(http_probe: MakeHTTPProbe) -> None:
    async with closed_port() as target:
        result = await http_probe(target.url).run()

    assert result.status is ERROR
    assert result.message == "connection refused"
    assert result.code is None


async def test_target_that_never_answers_costs_one_timeout(http_probe: MakeHTTPProbe) -> None:
    async with hanging_target() as target:
        began = time.perf_counter()
        result = await http_probe(target.url, timeout=0.3).run()
        took = time.perf_counter() - began

    assert result.status is ERROR
    assert result.message == "timed out after 0.3 s waiting for the response"
    assert 0.3 <= took < 0.6
    assert result.latency_ms is not None and result.latency_ms >= 300


async def test_target_dripping_bytes_costs_one_timeout(http_probe: MakeHTTPProbe) -> None:
    async with dripping_target(interval=0.1) as target:
        began = time.perf_counter()
        result = await http_probe(target.url, timeout=0.5).run()
        took = time.perf_counter() - began

    assert result.status is ERROR
    assert result.message.startswith("timed out after 0.5 s")
    assert 0 < target.bytes_sent < 10
    assert 0.5 <= took < 0.8


async def test_gigabyte_body_is_cut_at_max_body(http_probe: MakeHTTPProbe) -> None:
    async with endless_body_target(size=1024**3) as target:
        tracemalloc.start()
        try:
            began = time.perf_counter()
            result = await http_probe(target.url, timeout=5.0,
                                      expect={"body_contains": "never there"}).run()
            took = time.perf_counter() - began
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert result.status is FAILING  # answered 200; only the content condition failed
    assert result.code == 200
    assert result.message == "body does not contain 'never there' (body truncated at 1 MiB)"
    assert took < 1.0
    assert peak < 8 * 1024**2
    # What the server managed to hand over includes both sockets' kernel buffers.
    assert target.bytes_sent < 32 * 1024**2


async def test_long_body_is_not_an_error_for_status_checks(http_probe: MakeHTTPProbe) -> None:
    async with endless_body_target(size=1024**3, content_length=False) as target:
        result = await http_probe(target.url, max_body="64KiB").run()

    assert result.status is OK
    assert result.message == ""
    assert target.bytes_sent < 32 * 1024**2


async def test_body_within_max_body_is_seen_whole(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        exact = await http_probe(target.url, path="/sized/1024", max_body="1KiB",
                                 expect={"body_contains": "END"}).run()
        over = await http_probe(target.url, path="/sized/1025", max_body="1KiB",
                                expect={"body_contains": "END"}).run()

    assert exact.status is OK, exact.message
    assert over.status is FAILING
    assert over.message == "body does not contain 'END' (body truncated at 1 KiB)"


async def test_non_http_answer_is_an_invalid_response(http_probe: MakeHTTPProbe) -> None:
    async with garbage_target() as target:
        result = await http_probe(target.url).run()

    assert result.status is ERROR
    assert result.message.startswith("invalid HTTP response: bad status line")
    assert "SSH-2.0" in result.message


async def test_endless_headers_are_cut_off(http_probe: MakeHTTPProbe) -> None:
    async with endless_headers_target() as target:
        result = await http_probe(target.url, timeout=2.0).run()

    assert result.status is ERROR
    assert result.message == "invalid HTTP response: too many headers received"
    assert target.bytes_sent < 4 * 1024**2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Token: " + b"s3cret" * 20000 + b"\r\n\r\n",
         "invalid HTTP response: header line too long"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
         "invalid compressed body"),
        (b"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/\r\nContent-Length: 0\r\n\r\n",
         "redirect to an invalid or non-HTTP URL"),
        (b"", "connection closed before a response"),
    ],
)
async def test_malformed_answers_are_errors(
    http_probe: MakeHTTPProbe, answer: bytes, message: str
) -> None:
    async with scripted_target(answer) as target:
        result = await http_probe(target.url).run()

    assert result.status is ERROR
    assert result.message == message


async def test_connection_closed_mid_body(http_probe: MakeHTTPProbe) -> None:
    async with truncated_body_target(promised=1000) as target:
        result = await http_probe(target.url).run()

    assert result.status is ERROR
    assert result.message == "connection closed mid-response"


async def test_untrusted_certificate_is_an_error_unless_verification_is_off(
    http_probe: MakeHTTPProbe,
) -> None:
    async with tls_target() as target:
        verified = await http_probe(target.url, path="/health").run()
        unverified = await http_probe(target.url, path="/health", verify_tls=False).run()

    assert verified.status is ERROR
    assert verified.message.startswith("TLS certificate verify failed: ")
    assert "certificate" in verified.message.removeprefix("TLS certificate verify failed")
    assert unverified.status is OK, unverified.message
    assert "connect" in unverified.timings


async def test_plain_http_to_a_tls_port_is_an_error(http_probe: MakeHTTPProbe) -> None:
    async with tls_target() as target:
        result = await http_probe(target.url.replace("https://", "http://"), timeout=0.5).run()

    assert result.status is ERROR
    assert result.message  # the TLS server drops the plain request; any clear error will do


async def test_error_messages_carry_no_secrets(http_probe: MakeHTTPProbe) -> None:
    async with closed_port() as target:
        url = target.url.replace("http://", "http://user:s3cret@") + "/?token=abc123"
        in_url = await http_probe(None, url=url).run()
        in_header = await http_probe(target.url, headers={"Authorization": "Bearer xyz789"}).run()

    assert in_url.status is ERROR and in_header.status is ERROR
    for secret in ("s3cret", "abc123", "xyz789"):
        assert secret not in in_url.message + in_header.message


async def test_credentials_in_service_url_and_header_are_refused(
    http_probe: MakeHTTPProbe,
) -> None:
    with pytest.raises(ProbeError, match="Authorization header"):
        http_probe("http://user:pw@127.0.0.1:9", headers={"authorization": "Basic eA=="})
