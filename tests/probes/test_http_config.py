"""Validation of the http check's configuration."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from tocsin.probes.http import HTTPCheckConfig, StatusSet


def validate(**fields: Any) -> HTTPCheckConfig:
    return HTTPCheckConfig.model_validate({"type": "http", **fields})


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        validate(**fields)
    return str(caught.value)


def test_defaults() -> None:
    config = validate()
    assert (config.path, config.url, config.method) == (None, None, "GET")
    assert config.follow_redirects and config.verify_tls and not config.keepalive
    assert config.max_redirects == 10
    assert config.max_body == 1024 * 1024
    assert config.expect.status == "200-399"
    assert StatusSet.parse(config.expect.status).codes == frozenset(range(200, 400))


def test_full_config_from_yaml_like_values() -> None:
    config = validate(
        path="/health", method="post", headers={"x-company-key": "k"}, json_body={"a": 1},
        max_body="64KiB", keepalive=True, timeout="2s",
        expect={"status": [200, "3xx", "500-502"], "response_time": "1s",
                "body_contains": "ok", "body_regex": r"up\s+\d+", "json": {"$.status": "ok"},
                "headers": {"content-type": "application/json"}},
    )
    assert config.method == "POST"
    assert config.max_body == 65536
    assert config.timeout == 2.0
    assert config.expect.response_time == 1.0
    assert isinstance(config.expect.body_regex, re.Pattern)
    assert config.expect.json_values == {"$.status": "ok"}
    assert StatusSet.parse(config.expect.status).codes == (
        {200} | set(range(300, 400)) | {500, 501, 502})


def test_invalid_regex_is_refused_at_load() -> None:
    assert "invalid regular expression '(unclosed'" in refusal(expect={"body_regex": "(unclosed"})


@pytest.mark.parametrize("url", ["example.com/health", "127.0.0.1:8000/health", "/health"])
def test_url_without_scheme_is_refused(url: str) -> None:
    assert "URL without scheme: write http://… or https://…" in refusal(url=url)


def test_url_with_another_scheme_is_refused() -> None:
    assert "URL scheme must be http or https, not 'ftp'" in refusal(url="ftp://example.com/")


def test_url_without_host_is_refused() -> None:
    assert "URL without host" in refusal(url="http:///health")


def test_path_and_url_together_are_refused() -> None:
    assert "either path" in refusal(path="/health", url="http://127.0.0.1:1/health")


def test_body_and_json_body_together_are_refused() -> None:
    assert "either body or json_body" in refusal(body="x", json_body={"a": 1})


@pytest.mark.parametrize("method", ["FETCH", "get me", 42])
def test_unknown_method_is_refused(method: object) -> None:
    assert "method" in refusal(method=method)


@pytest.mark.parametrize("status", [99, 600, "6xx", "299-200", "2XX-3xx", [], "ok"])
def test_invalid_status_is_refused(status: object) -> None:
    assert "status" in refusal(expect={"status": status})


def test_status_class_is_case_insensitive_and_digit_strings_are_codes() -> None:
    assert StatusSet.parse("2XX").codes == frozenset(range(200, 300))
    assert StatusSet.parse(["204"]).codes == frozenset({204})


@pytest.mark.parametrize("path", ["$.", "$..a", "a[", "$.items[x]", "", "$"])
def test_invalid_json_path_is_refused(path: str) -> None:
    assert "invalid JSON path" in refusal(expect={"json": {path: 1}})


def test_header_with_a_newline_is_refused() -> None:
    assert "one line" in refusal(headers={"X-Key": "a\r\nInjected: yes"})
    assert "invalid header name" in refusal(headers={"Bad Name": "x"})


def test_credentials_in_url_and_authorization_header_are_refused() -> None:
    assert "not both" in refusal(url="http://u:p@127.0.0.1:1/", headers={"Authorization": "x"})


@pytest.mark.parametrize(
    "fields",
    [{"unknown": 1}, {"expect": {"status_code": 200}}, {"max_body": "1 parsec"},
     {"expect": {"response_time": 1000}}, {"type": "tcp"}],
)
def test_unknown_keys_and_bad_values_are_refused(fields: dict[str, Any]) -> None:
    refusal(**fields)
