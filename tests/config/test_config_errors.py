"""Every kind of bad config is refused with its key path, its line and a useful message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tocsin.config import ConfigError, ConfigIssue, load_config, load_config_text

Issues = Callable[..., list[ConfigIssue]]


def only(issues: list[ConfigIssue]) -> ConfigIssue:
    assert len(issues) == 1, [str(issue) for issue in issues]
    return issues[0]


def test_invalid_yaml_reports_its_line(issues_of: Issues) -> None:
    issue = only(issues_of("storage: sqlite:///x.db\nservices:\n  a: [1, 2\nweb: {}\n"))
    assert issue.line == 4
    assert issue.message.startswith("invalid YAML")
    assert str(issue).startswith("tocsin.yaml:4: invalid YAML")


def test_unquoted_reference_in_flow_mapping_gets_a_hint(issues_of: Issues) -> None:
    issue = only(issues_of("services:\n  a:\n    labels: {k: ${X}}\n"))
    assert issue.line == 3
    assert 'quote a ${VAR} value: "${VAR}"' in issue.message


def test_duplicate_yaml_key_is_refused(issues_of: Issues) -> None:
    issue = only(issues_of("web:\n  port: 1\n  port: 2\n"))
    assert (issue.line, issue.path) == (3, "web.port")
    assert "duplicate key 'port' (first set on line 2)" in issue.message


def test_top_level_must_be_a_mapping(issues_of: Issues) -> None:
    assert "must be a mapping" in only(issues_of("- a\n- b\n")).message


def test_unknown_top_level_key_suggests_the_right_one(issues_of: Issues) -> None:
    issue = only(issues_of("storage: sqlite:///x.db\nservises: {}\n"))
    assert (issue.line, issue.path) == (2, "servises")
    assert issue.message == "unknown key 'servises' (did you mean 'services'?)"


def test_unknown_key_in_a_check_suggests_the_right_one(issues_of: Issues) -> None:
    text = """\
services:
  backend:
    url: http://127.0.0.1:8001
    checks:
      - type: http
        path: /health
        tiemout: 5s
"""
    issue = only(issues_of(text))
    assert str(issue) == ("tocsin.yaml:7: services.backend.checks[0].tiemout: "
                          "unknown key 'tiemout' (did you mean 'timeout'?)")


def test_unknown_key_under_an_aliased_field_is_found(issues_of: Issues) -> None:
    text = "services:\n  a:\n    checks:\n      - {type: http, expect: {jsn: {}}}\n"
    issue = only(issues_of(text))
    assert issue.path == "services.a.checks[0].expect.jsn"
    assert "did you mean 'json'?" in issue.message


def test_unknown_key_without_a_close_match_lists_the_keys(issues_of: Issues) -> None:
    issue = only(issues_of("web:\n  colour: blue\n"))
    assert issue.message == ("unknown key 'colour' "
                             "(expected one of: enabled, host, port, push_token)")


def test_wrong_type_is_refused(issues_of: Issues) -> None:
    issue = only(issues_of("scheduler:\n  concurrency: many\n"))
    assert (issue.line, issue.path) == (2, "scheduler.concurrency")
    assert "integer" in issue.message


def test_bad_duration_names_the_value_and_the_path(issues_of: Issues) -> None:
    text = """\
services:
  backend:
    url: http://127.0.0.1:8001
    checks:
      - type: http
        path: /health
        interval: 60s
        timeout: 10 parsecs
"""
    issue = only(issues_of(text))
    assert str(issue).startswith(
        "tocsin.yaml:8: services.backend.checks[0].timeout: invalid duration '10 parsecs': "
    )


@pytest.mark.parametrize("timeout", ["0s", "0", "-5s"])
def test_zero_and_negative_timeouts_are_refused(issues_of: Issues, timeout: str) -> None:
    text = f"services:\n  a:\n    checks:\n      - type: http\n        timeout: {timeout}\n"
    issue = only(issues_of(text))
    assert (issue.line, issue.path) == (5, "services.a.checks[0].timeout")


def test_zero_default_timeout_is_refused(issues_of: Issues) -> None:
    issue = only(issues_of("defaults:\n  timeout: 0s\n"))
    assert (issue.path, issue.message) == ("defaults.timeout",
                                           "a timeout must be longer than zero, e.g. 10s")


@pytest.mark.parametrize("where", ["defaults", "check"])
def test_interval_below_one_second_is_refused(issues_of: Issues, where: str) -> None:
    if where == "defaults":
        text, path = "defaults:\n  interval: 500ms\n", "defaults.interval"
    else:
        text = "services:\n  a:\n    checks:\n      - {type: http, interval: 500ms}\n"
        path = "services.a.checks[0].interval"
    issue = only(issues_of(text))
    assert issue.path == path
    assert issue.message == "an interval must be at least 1s, not 500ms"


def test_url_without_scheme_is_refused_helpfully(issues_of: Issues) -> None:
    issue = only(issues_of("services:\n  backend:\n    url: api.example.com\n"))
    assert (issue.line, issue.path) == (3, "services.backend.url")
    assert issue.message.startswith("URL without scheme: write it in full, e.g. https://")


@pytest.mark.parametrize("url", ["ftp://example.com", "http://"])
def test_url_must_be_http_with_a_host(issues_of: Issues, url: str) -> None:
    issue = only(issues_of(f"services:\n  backend:\n    url: '{url}'\n"))
    assert "http:// or https://" in issue.message


def test_storage_scheme_is_checked_without_echoing_the_url(issues_of: Issues) -> None:
    issue = only(issues_of("storage: mysql://root:hunter22@db/x\n"))
    assert issue.path == "storage"
    assert "hunter22" not in str(issue)


def test_port_out_of_range_is_refused(issues_of: Issues) -> None:
    assert only(issues_of("web: {port: 70000}\n")).path == "web.port"


def test_unknown_check_type_suggests_a_known_one(issues_of: Issues) -> None:
    issue = only(issues_of("services:\n  a:\n    checks:\n      - type: htp\n"))
    assert (issue.line, issue.path) == (4, "services.a.checks[0]")
    assert issue.message == "unknown check type 'htp' (did you mean 'http'?)"


def test_planned_types_are_suggested_too(issues_of: Issues) -> None:
    issue = only(issues_of("services:\n  a:\n    checks:\n      - type: deplyo\n"))
    assert "did you mean 'deploy'?" in issue.message


def test_check_without_type_lists_the_types(issues_of: Issues) -> None:
    issue = only(issues_of("services:\n  a:\n    checks:\n      - path: /\n"))
    assert issue.message.startswith("missing key 'type' (one of: ")
    assert "http" in issue.message


def test_duplicate_explicit_check_names_are_refused(issues_of: Issues) -> None:
    text = """\
services:
  a:
    checks:
      - {type: http, name: home}
  b:
    checks:
      - {type: http, name: home}
"""
    issue = only(issues_of(text))
    assert (issue.line, issue.path) == (7, "services.b.checks[0].name")
    assert issue.message == "duplicate check name 'home' (also used on line 4)"


def test_second_unnamed_check_of_a_type_must_be_named(issues_of: Issues) -> None:
    text = "services:\n  a:\n    checks:\n      - {type: http, path: /}\n      - {type: http}\n"
    issue = only(issues_of(text))
    assert (issue.line, issue.path) == (5, "services.a.checks[1]")
    assert "give it a distinct `name:`" in issue.message
    assert "'a:http'" in issue.message


def test_every_error_is_reported_at_once(issues_of: Issues) -> None:
    text = """\
storage: sqlite:///tocsin.db
web:
  prot: 8080
services:
  backend:
    url: http://127.0.0.1:8001
    checks:
      - type: http
        path: /health
        timeout: 10 parsecs
      - type: http
        name: second
        interval: 0.5s
"""
    issues = issues_of(text)
    assert [(issue.line, issue.path) for issue in issues] == [
        (3, "web.prot"),
        (10, "services.backend.checks[0].timeout"),
        (13, "services.backend.checks[1].interval"),
    ]


def test_env_and_schema_errors_are_reported_together(issues_of: Issues) -> None:
    text = "storage: ${DB_URL}\nweb: {port: -1}\n"
    issues = issues_of(text)
    assert [issue.path for issue in issues] == ["storage", "web.port"]


def test_a_value_that_failed_to_interpolate_gets_no_second_issue(issues_of: Issues) -> None:
    issue = only(issues_of("services:\n  a:\n    url: ${BACKEND_URL}\n"))
    assert "BACKEND_URL is not set" in issue.message


def test_config_error_lists_every_issue() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("web: {port: x, hots: y}\n", "t.yaml", env={})
    text = str(caught.value)
    assert text.startswith("2 problems in the config")
    assert "t.yaml:1: web.hots: unknown key 'hots' (did you mean 'host'?)" in text


def test_missing_file_is_one_issue_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    issue = only(caught.value.issues)
    assert issue.file == str(path)
    assert "cannot read the config file" in issue.message


def test_directory_is_an_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert only(caught.value.issues).file == str(tmp_path)


def test_unreadable_file_is_one_issue(tmp_path: Path) -> None:
    path = tmp_path / "tocsin.yaml"
    path.write_text("web: {}\n")
    path.chmod(0)
    try:
        if _can_read(path):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={})
        assert "Permission denied" in only(caught.value.issues).message
    finally:
        path.chmod(0o600)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tocsin.yaml"
    path.write_bytes(b"web: {host: \xff}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "not UTF-8" in only(caught.value.issues).message


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


def test_a_check_name_longer_than_the_store_keeps_is_refused(issues_of: Issues) -> None:
    long_name = "x" * 201
    (issue,) = issues_of(f"services:\n  api:\n    checks:\n      - {{type: tcp, host: h, port: 1, "
                         f"name: {long_name}}}\n")
    assert issue.path == "services.api.checks[0].name" and "at most 200" in issue.message
